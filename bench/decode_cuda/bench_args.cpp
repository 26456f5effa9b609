// bench_args.h: count flags and the no-CUDA reason of the CUDA benchmarks.
#include "bench_args.h"

#include <cstdlib>
#include <stdexcept>

#include "flexgen/build_info.h"
#include "flexgen/runtime_info.h"

namespace bench_decode {

int64_t parse_count(const std::string& flag, const std::string& text) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw std::invalid_argument(flag + ": not a whole number: \"" + text + "\"");
  if (n < 1) throw std::invalid_argument(flag + " must be at least 1, got " + text);
  return n;
}

std::string no_cuda_reason() {
  if (!FLEXGEN_CUDA_BUILT)
    return "this build has no CUDA (libtorch " + flexgen::torch_version() +
           " is a CPU build; the CUDA kernels are stubs); build flexgen against a CUDA libtorch";
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  return std::string("no CUDA GPU is visible to this process") +
         (visible ? std::string(" (CUDA_VISIBLE_DEVICES=") + visible + ")" : std::string());
}

}  // namespace bench_decode
