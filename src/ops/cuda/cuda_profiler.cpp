// cuda_profiler_start / cuda_profiler_stop (cuda_profiler.h) over cudaProfilerStart / Stop.
#include "cuda_profiler.h"

#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace flexgen {

namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA profiler: ") + what + ": " + cudaGetErrorString(e));
}
}  // namespace

void cuda_profiler_start() {
  check(cudaDeviceSynchronize(), "wait before start");
  check(cudaProfilerStart(), "start");
}

void cuda_profiler_stop() {
  check(cudaDeviceSynchronize(), "wait before stop");
  check(cudaProfilerStop(), "stop");
}

}  // namespace flexgen
