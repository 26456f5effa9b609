// flexgen_ops_cuda for builds whose libtorch has no CUDA: every CUDA entry point (attention, mask
// upload and table, fused model kernels, CUDA graphs, and the raw launchers of the linears that
// bench/decode_cuda calls directly) exists and fails clearly.
#include <stdexcept>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/cuda_device.h"
#include "cuda/cuda_event.h"
#include "cuda/cuda_graph.h"
#include "cuda/cuda_profiler.h"
#include "cuda/fused_ops_cuda.h"
#include "cuda/kernel_preload.h"
#include "cuda/max_prob_pick_cuda.h"
#include "cuda/mma_linear_params.h"
#include "cuda/prefill_linear_params.h"
#include "cuda/step_timeline.h"

namespace flexgen {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw std::runtime_error(std::string(what) +
                           ": flexgen was built without CUDA (libtorch has no CUDA); use the CPU kernel");
}
}  // namespace

DeviceBlockMask upload_block_mask(const BlockMask&, const AttentionMask&, const at::Device&) {
  no_cuda("upload_block_mask");
}

BlockSparseAttentionResult block_sparse_attention_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                       const std::vector<DeviceMaskRef>&,
                                                       const BlockSparseAttentionOptions&) {
  no_cuda("block_sparse_attention_cuda");
}

DeviceMaskTable make_device_mask_table(int64_t, int64_t, const at::Device&, int64_t) {
  no_cuda("make_device_mask_table");
}

DeviceMaskTable device_mask_table_rows(const DeviceMaskTable&, int64_t) { no_cuda("device_mask_table_rows"); }

bool shared_prefix_reads() { no_cuda("shared_prefix_reads"); }
bool decode_plans() { no_cuda("decode_plans"); }

void update_device_mask_table(DeviceMaskTable&, const std::vector<DeviceMaskRef>&) {
  no_cuda("update_device_mask_table");
}

BlockSparseAttentionResult block_sparse_attention_cuda_table(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                       const DeviceMaskTable&, const BlockSparseAttentionOptions&) {
  no_cuda("block_sparse_attention_cuda");
}

std::vector<std::pair<int32_t, float>> max_prob_argmax_cuda(const at::Tensor&, const std::vector<std::vector<int64_t>>&,
                                                            const std::vector<std::vector<double>>&) {
  no_cuda("max_prob_argmax");
}

struct CudaGraph::Impl {};
CudaGraph::CudaGraph(const c10::Device&, const std::function<void()>&, int) { no_cuda("CudaGraph"); }
CudaGraph::~CudaGraph() = default;
void CudaGraph::replay() { no_cuda("CudaGraph::replay"); }

CudaEvent::CudaEvent(const c10::Device& device) : device_(device) { no_cuda("CudaEvent"); }
void CudaEvent::record() { no_cuda("CudaEvent"); }
void CudaEvent::wait() const { no_cuda("CudaEvent"); }

KernelPreload preload_cuda_kernels() { no_cuda("preload_cuda_kernels"); }

void cuda_profiler_start() { no_cuda("cuda_profiler_start"); }
void cuda_profiler_stop() { no_cuda("cuda_profiler_stop"); }

at::Tensor rms_norm_cuda(const at::Tensor&, const at::Tensor&, double) { no_cuda("rms_norm_cuda"); }
at::Tensor add_rms_norm_cuda(at::Tensor&, const at::Tensor&, const at::Tensor&, double) {
  no_cuda("add_rms_norm_cuda");
}
at::Tensor silu_mul_cuda(const at::Tensor&) { no_cuda("silu_mul_cuda"); }

std::pair<at::Tensor, at::Tensor> rope_tables_cuda(const at::Tensor&, const at::Tensor&, at::ScalarType) {
  no_cuda("rope_tables_cuda");
}
at::Tensor rope_qkv_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, const at::Tensor&,
                         const at::Tensor&, const at::Tensor&) {
  no_cuda("rope_qkv_cuda");
}
at::Tensor rope_qkv_packed_cuda(const at::Tensor&, const at::Tensor&, int64_t, int64_t, const at::Tensor&,
                                const at::Tensor&, int64_t, int64_t, const at::Tensor&, const at::Tensor&,
                                const at::Tensor&) {
  no_cuda("rope_qkv_packed_cuda");
}

at::Tensor linear_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool, bool) { no_cuda("linear_cuda"); }
bool cuda_decode_epilogues_fused(int64_t) { no_cuda("cuda_decode_epilogues_fused"); }
bool cuda_decode_layer_kernel(int64_t) { no_cuda("cuda_decode_layer_kernel"); }
at::Tensor decode_layer_tail_cuda(at::Tensor&, const at::Tensor&, const DecodeLayerTail&, const NextLayerQkv*) {
  no_cuda("decode_layer_tail_cuda");
}
at::Tensor linear_rope_qkv_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                const at::Tensor&, int64_t, int64_t, const at::Tensor&, const at::Tensor&,
                                const at::Tensor&) {
  no_cuda("linear_rope_qkv_cuda");
}
at::Tensor linear_silu_mul_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  no_cuda("linear_silu_mul_cuda");
}
at::Tensor prefill_linear_silu_mul_cuda(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  no_cuda("prefill_linear_silu_mul_cuda");
}

namespace cuda_fused {
int gemv(DType, const void*, const void*, void*, int, int, int, int, bool, void*, bool) { no_cuda("cuda_fused::gemv"); }
int gemv_warps_per_column(int) { no_cuda("cuda_fused::gemv_warps_per_column"); }
int mma_linear(DType, const void*, const void*, void*, int64_t, int, int, int, bool, void*, bool) {
  no_cuda("cuda_fused::mma_linear");
}
int mma_linear_k_splits(int) { no_cuda("cuda_fused::mma_linear_k_splits"); }
int mma_linear_epilogue(DType, const void*, const void*, void*, int64_t, int, int, int, bool, const MmaEpilogue&, void*,
                        bool) {
  no_cuda("cuda_fused::mma_linear_epilogue");
}
int prefill_linear(DType, const void*, const void*, void*, int64_t, int, int, void*, bool) {
  no_cuda("cuda_fused::prefill_linear");
}
}  // namespace cuda_fused

void bind_cuda_device(const at::Device&) { no_cuda("bind_cuda_device"); }

bool cuda_block_sparse_attention_available() { return false; }

std::string block_sparse_attention_cuda_backend() { return "none (built without CUDA)"; }

namespace cuda_timeline {
bool built() { return false; }
void clear() { no_cuda("cuda_timeline::clear"); }
std::vector<Stamp> read() { no_cuda("cuda_timeline::read"); }
bool register_unit(void (*)(), void (*)(std::vector<Stamp>&)) { return false; }
}  // namespace cuda_timeline

}  // namespace flexgen
