// preload_cuda_kernels (kernel_preload.h): each module found from its anchor kernel
// (kernel_module.cuh), its kernels listed and loaded through the driver's entry points.
#include "cuda/kernel_preload.h"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace flexgen {
namespace cuda_preload {
// One per .cu file of flexgen_ops_cuda (FLEXGEN_CUDA_MODULE_ANCHOR).
const void* block_sparse_attention_module();
const void* block_sparse_attention_wgmma_module();
const void* decode_layer_module();
const void* fused_ops_module();
const void* max_prob_pick_module();
const void* mma_linear_module();
const void* mma_linear_wgmma_module();
const void* prefill_linear_module();
const void* prefill_linear_tma_module();
}  // namespace cuda_preload

namespace {

struct Driver {
  PFN_cuFuncGetModule_v11000 func_module = nullptr;
  PFN_cuModuleGetFunctionCount_v12040 function_count = nullptr;
  PFN_cuModuleEnumerateFunctions_v12040 functions = nullptr;
  PFN_cuFuncIsLoaded_v12040 is_loaded = nullptr;
  PFN_cuFuncLoad_v12040 load = nullptr;
  bool ok() const { return func_module && function_count && functions && is_loaded && load; }
};

template <typename Fn>
void entry_point(const char* name, int version, Fn& fn) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050
  const cudaError_t e = cudaGetDriverEntryPointByVersion(name, &p, version, cudaEnableDefault, &found);
#else
  (void)version;
  const cudaError_t e = cudaGetDriverEntryPoint(name, &p, cudaEnableDefault, &found);
#endif
  fn = e == cudaSuccess && found == cudaDriverEntryPointSuccess ? reinterpret_cast<Fn>(p) : nullptr;
}

const Driver& driver() {
  static const Driver d = [] {
    Driver d;
    entry_point("cuFuncGetModule", 11000, d.func_module);
    entry_point("cuModuleGetFunctionCount", 12040, d.function_count);
    entry_point("cuModuleEnumerateFunctions", 12040, d.functions);
    entry_point("cuFuncIsLoaded", 12040, d.is_loaded);
    entry_point("cuFuncLoad", 12040, d.load);
    return d;
  }();
  return d;
}

void check(CUresult r, const char* what) {
  if (r != CUDA_SUCCESS)
    throw std::runtime_error(std::string("CUDA: loading flexgen's kernels failed (") + what + ", driver error " +
                             std::to_string(static_cast<int>(r)) + ")");
}

}  // namespace

KernelPreload preload_cuda_kernels() {
  KernelPreload out;
  const Driver& d = driver();
  if (!d.ok()) return out;
  out.supported = true;
  const void* anchors[] = {cuda_preload::block_sparse_attention_module(), cuda_preload::block_sparse_attention_wgmma_module(),
                           cuda_preload::decode_layer_module(),           cuda_preload::fused_ops_module(),
                           cuda_preload::max_prob_pick_module(),          cuda_preload::mma_linear_module(),
                           cuda_preload::mma_linear_wgmma_module(),       cuda_preload::prefill_linear_module(),
                           cuda_preload::prefill_linear_tma_module()};
  std::vector<CUmodule> seen;
  for (const void* anchor : anchors) {
    cudaFunction_t f = nullptr;
    if (const cudaError_t e = cudaGetFuncBySymbol(&f, anchor); e != cudaSuccess)
      throw std::runtime_error(std::string("CUDA: loading flexgen's kernels failed (") + cudaGetErrorString(e) + ")");
    CUmodule m = nullptr;
    check(d.func_module(&m, reinterpret_cast<CUfunction>(f)), "cuFuncGetModule");
    bool known = false;
    for (CUmodule s : seen) known = known || s == m;
    if (known) continue;
    seen.push_back(m);
    unsigned n = 0;
    check(d.function_count(&n, m), "cuModuleGetFunctionCount");
    std::vector<CUfunction> fns(n);
    if (n > 0) check(d.functions(fns.data(), n, m), "cuModuleEnumerateFunctions");
    for (CUfunction fn : fns) {
      CUfunctionLoadingState state{};
      check(d.is_loaded(&state, fn), "cuFuncIsLoaded");
      if (state == CU_FUNCTION_LOADING_STATE_LOADED) continue;
      check(d.load(fn), "cuFuncLoad");
      ++out.loaded;
    }
    out.kernels += static_cast<int>(n);
  }
  out.modules = static_cast<int>(seen.size());
  return out;
}

}  // namespace flexgen
