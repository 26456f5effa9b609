// Loading flexgen's CUDA kernels onto the device up front (private to the CUDA backend and the
// model). CUDA loads a kernel at its first launch (lazy loading, the default since CUDA 12.2):
// without this, a run's first passes and steps of each kind wait for it (~45 ms on an H200 for a
// 3B WebQA run, measured 2026-12-02).
#pragma once

namespace flexgen {

struct KernelPreload {
  bool supported = false;  // the driver loads single kernels (cuFuncLoad, CUDA 12.4+)
  int modules = 0;         // flexgen's CUDA modules
  int kernels = 0;         // kernels in them
  int loaded = 0;          // kernels this call loaded (the rest were loaded already)
};

// Loads every kernel of flexgen's CUDA modules onto the current device; without driver support
// returns supported = false and loads nothing (kernels then load at their first launch). Throws
// std::runtime_error when the driver fails, or when built without CUDA.
KernelPreload preload_cuda_kernels();

}  // namespace flexgen
