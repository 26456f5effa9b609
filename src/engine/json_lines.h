// JSON text read line by line, as the dataset and result-file readers take it (internal header).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace flexgen {

// Calls fn(line, number) for each line of JSON Lines text that is not blank (a trailing CR
// dropped); number: 1-based.
void for_each_json_line(const std::string& text, const std::function<void(const std::string&, size_t)>& fn);

// The 1-based line of text at which a JSON parse stopped (error_byte: nlohmann's parse_error::byte,
// 1-based; 0 = the start).
size_t json_error_line(const std::string& text, size_t error_byte);

}  // namespace flexgen
