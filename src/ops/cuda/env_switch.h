// Environment switches of the CUDA kernels (A/B runs: FLEXGEN_CUDA_*): one reader that refuses a
// value a switch does not take, naming the switch and its values. Plain C++.
#pragma once

#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace flexgen {
namespace cuda_env {

// The value of switch `name` ("" when unset or empty); a value not in `values` throws
// std::invalid_argument "NAME must be a, b or c, got 'v'".
inline std::string env_switch(const char* name, std::initializer_list<const char*> values) {
  const char* env = std::getenv(name);
  const std::string v = env ? env : "";
  if (v.empty()) return v;
  for (const char* allowed : values)
    if (v == allowed) return v;
  std::string list;
  size_t i = 0;
  for (const char* allowed : values) {
    if (i > 0) list += i + 1 == values.size() ? " or " : ", ";
    list += allowed;
    ++i;
  }
  throw std::invalid_argument(std::string(name) + " must be " + list + ", got '" + v + "'");
}

}  // namespace cuda_env
}  // namespace flexgen
