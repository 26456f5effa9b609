// nlohmann_json's error text without its "[json.exception.parse_error.101] " prefix, so that
// messages about model files say what is wrong in words, not the library's error ids.
#pragma once

#include <exception>
#include <string>

namespace flexgen {

inline std::string json_error_text(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0)
    if (const size_t b = m.find("] "); b != std::string::npos) m = m.substr(b + 2);
  return m;
}

}  // namespace flexgen
