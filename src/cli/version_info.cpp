// `flexgen --version`: version, git commit, libtorch, CUDA, CPU kernel paths, build type.
#include "version_info.h"

#include <stdexcept>

#include "flexgen/build_info.h"
#include "flexgen/cpu_isa.h"
#include "flexgen/runtime_info.h"

namespace flexgen::cli {

std::string cpu_kernels_text() {
  std::string runnable;
  for (CpuIsa isa : runnable_cpu_isas()) runnable += std::string(runnable.empty() ? "" : ", ") + to_string(isa);
  std::string text = std::string(to_string(cpu_isa())) + " (runnable: " + runnable + ")";
  if (const CpuIsa many = bf16_linear_isa(kLinearManyRows); many != cpu_isa())
    text += "; bf16 calls of " + std::to_string(kLinearManyRows) + "+ rows: " + to_string(many) + " (measured faster)";
  return text;
}

std::string version_text() {
  std::string kernels;
  try {
    kernels = cpu_kernels_text();
  } catch (const std::exception& e) {
    kernels = std::string("error: ") + e.what();
  }
  std::string cuda = "not built in";
  if (FLEXGEN_CUDA_BUILT) cuda = "built in, " + std::to_string(cuda_device_count()) + " device(s) seen";
  return std::string("flexgen ") + FLEXGEN_VERSION + "\n" +   //
         "commit: " + FLEXGEN_GIT_COMMIT + "\n" +             //
         "libtorch: " + torch_version() + "\n" +              //
         "CUDA: " + cuda + "\n" +                             //
         "CPU kernels: " + kernels + "\n" +                   //
         "build: " + FLEXGEN_BUILD_TYPE + ", " + FLEXGEN_COMPILER;
}

}  // namespace flexgen::cli
