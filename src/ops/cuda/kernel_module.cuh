// One empty kernel in each of flexgen's CUDA translation units (each its own CUDA module): the
// handle kernel_preload.cpp finds the module by, to load every kernel in it up front.
#pragma once

// In a .cu file, at namespace scope: defines flexgen::cuda_preload::NAME_module(), the host stub
// of an empty kernel of this file's module.
#define FLEXGEN_CUDA_MODULE_ANCHOR(NAME)                                                        \
  namespace flexgen {                                                                           \
  namespace cuda_preload {                                                                      \
  __global__ void NAME##_module_anchor_kernel() {}                                              \
  const void* NAME##_module() { return reinterpret_cast<const void*>(&NAME##_module_anchor_kernel); } \
  }                                                                                             \
  }
