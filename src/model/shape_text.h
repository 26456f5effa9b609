// "[2, 3, 4]" for a tensor shape in messages (private to the model layer).
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace flexgen {

inline std::string shape_str(c10::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace flexgen
