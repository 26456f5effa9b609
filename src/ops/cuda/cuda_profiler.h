// The CUDA profiler's collection switch (private to the CUDA backend and its benchmarks): work
// queued between cuda_profiler_start() and cuda_profiler_stop() is what a profiler started with
// collection off (`ncu --profile-from-start off`) records. Both throw std::runtime_error when built
// without CUDA.
#pragma once

namespace flexgen {

// Waits for the device's queued work, then turns collection on.
void cuda_profiler_start();
// Waits for the device's queued work, then turns collection off.
void cuda_profiler_stop();

}  // namespace flexgen
