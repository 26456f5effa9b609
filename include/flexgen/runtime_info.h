// Facts about the libtorch this binary runs on (version, CUDA, BLAS), for --version and benchmarks.
#pragma once

#include <string>

namespace flexgen {

std::string torch_version();
bool cuda_available();
int cuda_device_count();  // 0 without CUDA
// Which BLAS library serves libtorch's CPU matrix products (resolved at run time).
std::string blas_library();

}  // namespace flexgen
