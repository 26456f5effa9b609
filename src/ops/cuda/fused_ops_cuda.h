// Fused CUDA kernels for the LLaMA forward pass on bf16 or fp16 tensors: each does in one launch
// what several libtorch ops do, with the same rounding points (to the tensors' dtype) as
// transformers' modules, so the CUDA forward needs ~9 launches per layer instead of ~40. Built
// only with CUDA (stubs throw otherwise); inputs must be contiguous CUDA tensors, all bf16 or all
// fp16. "bf16(...)" below means rounded to that dtype.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

namespace flexgen {

// LlamaRMSNorm: weight * bf16(x * rsqrt(mean(x^2) + eps)), statistics in fp32. x [..., n].
at::Tensor rms_norm_cuda(const at::Tensor& x, const at::Tensor& weight, double eps);

// h = bf16(h + delta) in place, then rms_norm_cuda(h, weight, eps) (residual add + next norm).
at::Tensor add_rms_norm_cuda(at::Tensor& h, const at::Tensor& delta, const at::Tensor& weight, double eps);

// gu [..., 2 I] (gate | up) -> bf16(silu(gate)) * up, rounded like at::silu then mul_: [..., I].
at::Tensor silu_mul_cuda(const at::Tensor& gu);

// RoPE tables of positions [B, L] (int64) for inv_freq [D / 2] (fp32), both on the device: cos, sin
// [B, 1, L, D] of `dtype` (bf16 or fp16), bitwise what libtorch gives for
// cat(f, f).cos().to(dtype) with f = positions.to(float)[..., None] * inv_freq, in one launch.
std::pair<at::Tensor, at::Tensor> rope_tables_cuda(const at::Tensor& positions, const at::Tensor& inv_freq,
                                                   at::ScalarType dtype);

// qkv [B, L, (H + 2 Hkv) D] (q | k | v of L new tokens), cos/sin [B, 1, L, D]: returns the
// RoPE'd q [B, H, L, D] and writes RoPE'd k and v into the layer's cache k_cache/v_cache
// [B, Hkv, T, D] at slots first_slot[b] + l (first_slot int64 [B], on the device).
at::Tensor rope_qkv_cuda(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin, int64_t heads,
                         int64_t kv_heads, const at::Tensor& k_cache, const at::Tensor& v_cache,
                         const at::Tensor& first_slot);
// The same for packed q|k|v rows qkv [..., T, (H + 2 Hkv) D]: token b * L + l's q|k|v are row
// rows[b * L + l] (int64 [B * L] on the device; -1: zeros), so the bits are rope_qkv_cuda's of the
// [B, L] layout with zeros at the unlisted tokens, without laying it out.
at::Tensor rope_qkv_packed_cuda(const at::Tensor& qkv, const at::Tensor& rows, int64_t B, int64_t L,
                                const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t kv_heads,
                                const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& first_slot);

// The model's linear layer on CUDA: x [..., K] . weight [N, K]^T (+ bias). Up to 8 rows go through
// a GEMV kernel that streams the weights at close to memory bandwidth; more rows through
// at::linear (cuBLAS).
// With rows_apart (batch-invariant decode steps), any number of rows goes through the tensor-core
// kernel that reads the weights from memory once for all rows and computes each row's result as
// it would alone (the same bits in a batch of any size, on any GPU); with prefill too (the tokens of a prefill
// pass), through the tiled row-invariant kernel instead (its own bits, the same in a pass of any
// size or composition). Shapes they cannot take are refused.
at::Tensor linear_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {},
                       bool rows_apart = false, bool prefill = false);

// Reads the fused kernels' and the linears' environment switches now (a value they do not take
// throws std::invalid_argument; bind_cuda_device calls it). CUDA builds only.
void read_fused_ops_switches();

// Whether the two calls below, for `rows` rows, fold their elementwise step into the linear (the
// default for 1-8 rows) or run the separate kernels (more rows: there the separate kernels were
// faster; FLEXGEN_CUDA_DECODE_EPILOGUE=separate; the GEMV decode linear of
// FLEXGEN_CUDA_DECODE_LINEAR=gemv; FLEXGEN_CUDA_DECODE_EPILOGUE=all folds at every row count): the
// same bits either way; switches for benchmarks.
bool cuda_decode_epilogues_fused(int64_t rows);

// Decode steps (rows kept apart, one new token a row): the q|k|v projection with RoPE and the
// cache write folded into its epilogue; the same bits as rope_qkv_cuda(linear_cuda(x, weight,
// bias, true), cos, sin, ...). x [B, 1, hidden] (other L: the two calls, as written).
at::Tensor linear_rope_qkv_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t kv_heads,
                                const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& first_slot);

// Decode steps: the gate|up projection with SiLU x up folded into its epilogue; the same bits as
// silu_mul_cuda(linear_cuda(x, weight, bias, true)).
at::Tensor linear_silu_mul_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// silu_mul_cuda(linear_cuda(x, weight, bias, true, true)) for the tokens of a prefill pass, the
// same bits; in one launch where the tiled kernel's epilogue takes the SiLU (Hopper, 256+ rows, no
// bias, I % 8 == 0), else as those two calls.
at::Tensor prefill_linear_silu_mul_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// Whether a decode step of `rows` rows runs each layer's projections after its attention through
// decode_layer_tail_cuda: one row (a batch-1 step) with FLEXGEN_CUDA_LAYER_KERNEL=1 and the
// epilogues on (cuda_decode_epilogues_fused); the same bits either way. Off by default: on an
// H200 the persistent launch is slower than the separate kernels (docs/cuda.md).
bool cuda_decode_layer_kernel(int64_t rows);

// One layer's weights after its attention, for decode_layer_tail_cuda. index: the layer's place in
// the model (launches of different layers may overlap; each index gets its own barrier).
struct DecodeLayerTail {
  at::Tensor o_proj, post_norm, gate_up_proj, down_proj;  // gate_up fused: [2 I, hidden]
  double eps = 0;
  int64_t index = 0;
};

// The next layer's attention inputs, computed in the same launch.
struct NextLayerQkv {
  at::Tensor input_norm, qkv_proj;  // qkv fused: [(H + 2 Hkv) D, hidden]
  at::Tensor cos, sin;              // [1, 1, 1, D]
  at::Tensor k_cache, v_cache;      // that layer's [1, Hkv, T, D]
  at::Tensor first_slot;            // int64 [1] on the device
  int64_t heads = 0, kv_heads = 0;
};

// A batch-1 decode step after a layer's attention a [1, 1, H D], in one persistent launch
// (decode_layer_kernel.cu; no biases): h = h + o(a); x = rms_norm(h, post_norm); h = h +
// down(silu(gate(x)) * up(x)), h [1, 1, hidden] updated in place; with `next`, returns the next
// layer's RoPE'd q [1, H, 1, D] from rms_norm(h, next.input_norm) and writes its k and v into
// next's caches (else returns an undefined tensor). Bitwise what add_rms_norm_cuda,
// linear_silu_mul_cuda, linear_cuda (rows apart) and linear_rope_qkv_cuda give for that row.
at::Tensor decode_layer_tail_cuda(at::Tensor& h, const at::Tensor& a, const DecodeLayerTail& layer,
                                  const NextLayerQkv* next = nullptr);

}  // namespace flexgen
