// nlohmann's parse error messages without their prefix (internal header).
#pragma once

#include <exception>
#include <string>

namespace flexgen {

// The JSON message without nlohmann's "[json.exception...] parse error at line 1, " prefix.
std::string json_message(const std::exception& e);

}  // namespace flexgen
