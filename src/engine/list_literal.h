// Lists of strings written as text, as CSV cells hold them (internal header).
#pragma once

#include <string>
#include <vector>

namespace flexgen {

// Parses a JSON array of strings or a Python list literal of strings ("['a', \"b's\"]",
// as pandas writes a list column). Throws std::invalid_argument saying what is wrong.
std::vector<std::string> parse_string_list(const std::string& text);

}  // namespace flexgen
