// nlohmann's parse error messages without their prefix (see json_message.h).
#include "json_message.h"

namespace flexgen {

std::string json_message(const std::exception& e) {
  std::string m = e.what();
  const size_t bracket = m.find("] ");
  if (bracket != std::string::npos) m = m.substr(bracket + 2);
  const size_t at = m.find("at line ");
  const size_t comma = at == std::string::npos ? std::string::npos : m.find(", ", at);
  if (comma != std::string::npos) m = m.substr(comma + 2);
  return m;
}

}  // namespace flexgen
