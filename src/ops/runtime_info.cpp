#include "flexgen/runtime_info.h"

#include <ATen/Context.h>
#include <dlfcn.h>
#include <link.h>
#include <torch/version.h>

#include <cstring>

namespace flexgen {

std::string torch_version() { return TORCH_VERSION; }

bool cuda_available() { return at::hasCUDA() && cuda_device_count() > 0; }

int cuda_device_count() { return at::hasCUDA() ? static_cast<int>(at::getNumGPUs()) : 0; }

std::string blas_library() {
  // The loaded shared object that provides sgemm_ is the BLAS that ran.
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  if (sym == nullptr) return "built-in (no external sgemm_)";
  Dl_info info{};
  if (dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "unknown";
  char resolved[4096];
  if (realpath(info.dli_fname, resolved) != nullptr) return resolved;
  return info.dli_fname;
}

}  // namespace flexgen
