// JSON text read line by line (json_lines.h).
#include "json_lines.h"

#include <algorithm>
#include <sstream>

#include "unicode_text.h"

namespace flexgen {

void for_each_json_line(const std::string& text, const std::function<void(const std::string&, size_t)>& fn) {
  std::istringstream in(text);
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (unicode::strip(line).empty()) continue;
    fn(line, number);
  }
}

size_t json_error_line(const std::string& text, size_t error_byte) {
  const size_t byte = error_byte == 0 ? 0 : std::min(error_byte - 1, text.size());
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(byte), '\n'));
}

}  // namespace flexgen
