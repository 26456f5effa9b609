// Host side of the fused LLaMA kernels: checks, outputs, launches on the current stream.
#include "cuda/fused_ops_cuda.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <vector>
#include <string>

#include "cuda/cuda_device.h"
#include "env_switch.h"
#include "decode_layer_params.h"
#include "fused_ops_params.h"
#include "mma_linear_params.h"
#include "prefill_linear_params.h"

namespace flexgen {

namespace {

void need(bool ok, const char* who, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(who) + ": " + what);
}

// The kernels' element type of a call: bf16 or fp16, the same for every tensor of the call.
bool half_type(at::ScalarType t) { return t == at::kBFloat16 || t == at::kHalf; }

cuda_fused::DType dtype_of(const at::Tensor& t) {
  return t.scalar_type() == at::kBFloat16 ? cuda_fused::DType::BF16 : cuda_fused::DType::FP16;
}

// `t` is a contiguous CUDA tensor of `like`'s dtype (bf16 or fp16); without `like`, of either.
void half_cuda(const at::Tensor& t, const char* who, const char* name, const at::Tensor* like = nullptr) {
  need(t.defined() && t.is_cuda() && half_type(t.scalar_type()) && t.is_contiguous(), who,
       std::string(name) + " must be a contiguous bf16 or fp16 CUDA tensor");
  if (like) need(t.scalar_type() == like->scalar_type(), who, std::string(name) + " has another dtype than the input");
}

void launched(int err, const char* who) {
  if (err != 0)
    throw std::runtime_error(std::string(who) + ": launch failed: " + cudaGetErrorString(static_cast<cudaError_t>(err)));
}

// The stream to launch on.
void* stream() { return at::cuda::getCurrentCUDAStream().stream(); }

// x's shape with `cols` in its last dimension (a linear's output, silu_mul's of gate | up).
std::vector<int64_t> out_shape(const at::Tensor& x, int64_t cols) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = cols;
  return shape;
}

// Warps per output column of the GEMV for N outputs: from the shape (cuda_fused), or fixed by
// FLEXGEN_CUDA_GEMV_WPC=1|2|4|8 for kernel benchmarks (a fixed value changes the summation order,
// so results differ in the last bits from the default's; bench/decode_cuda compares them).
int gemv_wpc(int64_t N) {
  static const int forced = [] {
    const std::string v = cuda_env::env_switch("FLEXGEN_CUDA_GEMV_WPC", {"1", "2", "4", "8"});
    return v.empty() ? 0 : std::stoi(v);
  }();
  return forced ? forced : cuda_fused::gemv_warps_per_column(static_cast<int>(N));
}

at::Tensor norm(at::Tensor& h, const at::Tensor* delta, const at::Tensor& weight, double eps, const char* who) {
  half_cuda(h, who, "x");
  half_cuda(weight, who, "weight", &h);
  const int64_t n = h.size(-1);
  need(weight.dim() == 1 && weight.size(0) == n, who, "weight must be [" + std::to_string(n) + "]");
  need(n <= 32768, who, "rows longer than 32768 elements are not supported");
  if (delta) {
    half_cuda(*delta, who, "delta", &h);
    need(delta->sizes() == h.sizes(), who, "delta and h differ in shape");
  }
  c10::cuda::CUDAGuard guard(h.device());
  at::Tensor out = at::empty_like(h);
  const int64_t rows = n > 0 ? h.numel() / n : 0;
  if (rows == 0) return out;
  launched(cuda_fused::rms_norm(dtype_of(h), h.data_ptr(), delta ? delta->data_ptr() : nullptr, weight.data_ptr(),
                                out.data_ptr(), rows, static_cast<int>(n), static_cast<float>(eps), stream(),
                                cuda_pdl_enabled()),
           who);
  return out;
}

}  // namespace

at::Tensor rms_norm_cuda(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor h = x;  // not written without delta
  return norm(h, nullptr, weight, eps, "rms_norm_cuda");
}

at::Tensor add_rms_norm_cuda(at::Tensor& h, const at::Tensor& delta, const at::Tensor& weight, double eps) {
  return norm(h, &delta, weight, eps, "add_rms_norm_cuda");
}

at::Tensor silu_mul_cuda(const at::Tensor& gu) {
  const char* who = "silu_mul_cuda";
  half_cuda(gu, who, "gu");
  need(gu.size(-1) % 2 == 0, who, "last dimension must be even (gate | up)");
  const int64_t inter = gu.size(-1) / 2;
  c10::cuda::CUDAGuard guard(gu.device());
  at::Tensor out = at::empty(out_shape(gu, inter), gu.options());
  const int64_t rows = inter > 0 ? gu.numel() / (2 * inter) : 0;
  if (rows == 0) return out;
  launched(cuda_fused::silu_mul(dtype_of(gu), gu.data_ptr(), out.data_ptr(), rows, static_cast<int>(inter), stream(),
                                cuda_pdl_enabled()),
           who);
  return out;
}

namespace {

// rope_qkv_cuda's inputs for tokens [B, L] of `like`'s dtype with q|k|v `width` wide: returns D.
int64_t check_rope_inputs(const at::Tensor& like, int64_t B, int64_t L, int64_t width, const at::Tensor& cos,
                          const at::Tensor& sin, int64_t heads, int64_t kv_heads, const at::Tensor& k_cache,
                          const at::Tensor& v_cache, const at::Tensor& first_slot, const char* who) {
  half_cuda(cos, who, "cos", &like);
  half_cuda(sin, who, "sin", &like);
  need(heads > 0 && kv_heads > 0 && width % (heads + 2 * kv_heads) == 0, who, "qkv width vs heads");
  const int64_t D = width / (heads + 2 * kv_heads);
  need(D % 2 == 0 && D <= 2048, who, "head_dim must be even");
  need(cos.numel() == B * L * D && sin.numel() == B * L * D, who, "cos/sin must be [B, 1, L, head_dim]");
  for (const at::Tensor* c : {&k_cache, &v_cache})
    need(c->is_cuda() && c->scalar_type() == like.scalar_type() && c->dim() == 4 && c->size(0) == B &&
             c->size(1) == kv_heads && c->size(3) == D && c->stride(3) == 1,
         who, "k/v cache must be [B, Hkv, T, head_dim] of qkv's dtype with a contiguous last dimension");
  need(k_cache.strides() == v_cache.strides(), who, "k and v caches must have the same strides");
  need(first_slot.is_cuda() && first_slot.scalar_type() == at::kLong && first_slot.numel() == B &&
           first_slot.is_contiguous(),
       who, "first_slot must be int64 [B] on the device");
  return D;
}

// The same for `like` [B, L, ...].
int64_t check_rope_inputs(const at::Tensor& like, int64_t width, const at::Tensor& cos, const at::Tensor& sin,
                          int64_t heads, int64_t kv_heads, const at::Tensor& k_cache, const at::Tensor& v_cache,
                          const at::Tensor& first_slot, const char* who) {
  return check_rope_inputs(like, like.size(0), like.size(1), width, cos, sin, heads, kv_heads, k_cache, v_cache,
                           first_slot, who);
}

// Launches the RoPE + cache write of tokens [B, L] (q|k|v rows as RopeParams::rows says).
at::Tensor launch_rope_qkv(const at::Tensor& qkv, const at::Tensor& rows, int64_t B, int64_t L, int64_t D,
                           const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t kv_heads,
                           const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& first_slot,
                           const char* who) {
  c10::cuda::CUDAGuard guard(qkv.device());
  at::Tensor q = at::empty({B, heads, L, D}, qkv.options());
  if (B == 0 || L == 0) return q;
  cuda_fused::RopeParams p{};
  p.qkv = qkv.data_ptr(), p.cos = cos.data_ptr(), p.sin = sin.data_ptr(), p.q_out = q.data_ptr();
  p.k_cache = k_cache.data_ptr(), p.v_cache = v_cache.data_ptr(), p.first_slot = first_slot.data_ptr<int64_t>();
  p.rows = rows.defined() ? rows.data_ptr<int64_t>() : nullptr;
  p.cs0 = k_cache.stride(0), p.cs1 = k_cache.stride(1), p.cs2 = k_cache.stride(2);
  p.B = static_cast<int>(B), p.L = static_cast<int>(L), p.H = static_cast<int>(heads);
  p.Hkv = static_cast<int>(kv_heads), p.D = static_cast<int>(D);
  launched(cuda_fused::rope_qkv(dtype_of(qkv), p, stream(), cuda_pdl_enabled()), who);
  return q;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> rope_tables_cuda(const at::Tensor& positions, const at::Tensor& inv_freq,
                                                   at::ScalarType dtype) {
  const char* who = "rope_tables_cuda";
  need(positions.is_cuda() && positions.scalar_type() == at::kLong && positions.dim() == 2, who,
       "positions must be int64 [B, L] on a CUDA device");
  need(inv_freq.is_cuda() && inv_freq.scalar_type() == at::kFloat && inv_freq.dim() == 1 &&
           inv_freq.device() == positions.device(),
       who, "inv_freq must be fp32 [D / 2] on the positions' device");
  need(dtype == at::kBFloat16 || dtype == at::kHalf, who, "dtype must be bf16 or fp16");
  const int64_t B = positions.size(0), L = positions.size(1), D = 2 * inv_freq.size(0);
  c10::cuda::CUDAGuard guard(positions.device());
  const at::Tensor pos = positions.contiguous(), inv = inv_freq.contiguous();
  const auto options = at::TensorOptions().dtype(dtype).device(positions.device());
  at::Tensor cos = at::empty({B, 1, L, D}, options), sin = at::empty({B, 1, L, D}, options);
  launched(cuda_fused::rope_tables(dtype_of(cos), pos.data_ptr<int64_t>(), inv.data_ptr<float>(), cos.data_ptr(),
                                   sin.data_ptr(), B * L, static_cast<int>(D), stream(), cuda_pdl_enabled()),
           who);
  return {cos, sin};
}

at::Tensor rope_qkv_cuda(const at::Tensor& qkv, const at::Tensor& cos, const at::Tensor& sin, int64_t heads,
                         int64_t kv_heads, const at::Tensor& k_cache, const at::Tensor& v_cache,
                         const at::Tensor& first_slot) {
  const char* who = "rope_qkv_cuda";
  half_cuda(qkv, who, "qkv");
  need(qkv.dim() == 3, who, "qkv must be [B, L, (H + 2 Hkv) D]");
  const int64_t B = qkv.size(0), L = qkv.size(1);
  const int64_t D = check_rope_inputs(qkv, qkv.size(2), cos, sin, heads, kv_heads, k_cache, v_cache, first_slot, who);
  return launch_rope_qkv(qkv, at::Tensor(), B, L, D, cos, sin, heads, kv_heads, k_cache, v_cache, first_slot, who);
}

at::Tensor rope_qkv_packed_cuda(const at::Tensor& qkv, const at::Tensor& rows, int64_t B, int64_t L,
                                const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t kv_heads,
                                const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& first_slot) {
  const char* who = "rope_qkv_packed_cuda";
  half_cuda(qkv, who, "qkv");
  need(qkv.dim() >= 2 && qkv.is_contiguous(), who, "qkv must be contiguous packed rows [..., T, (H + 2 Hkv) D]");
  need(rows.is_cuda() && rows.scalar_type() == at::kLong && rows.is_contiguous() && rows.numel() == B * L, who,
       "rows must be int64 [B * L] on the device");
  const int64_t D =
      check_rope_inputs(qkv, B, L, qkv.size(-1), cos, sin, heads, kv_heads, k_cache, v_cache, first_slot, who);
  return launch_rope_qkv(qkv, rows, B, L, D, cos, sin, heads, kv_heads, k_cache, v_cache, first_slot, who);
}

namespace {

// The kernel of the row-invariant decode linears: the tensor-core kernel (mma_linear, default) or
// the per-row GEMV 8 rows a launch (FLEXGEN_CUDA_DECODE_LINEAR=gemv, for kernel benchmarks: its
// summation order differs, so results differ from the default's in the last bits).
bool decode_linear_gemv() {
  static const bool gemv = cuda_env::env_switch("FLEXGEN_CUDA_DECODE_LINEAR", {"mma", "gemv"}) == "gemv";
  return gemv;
}

bool kernel_shapes(const at::Tensor& x, const at::Tensor& weight, int64_t K) {
  return x.is_cuda() && half_type(x.scalar_type()) && weight.scalar_type() == x.scalar_type() &&
         weight.is_contiguous() && weight.dim() == 2 && weight.size(1) == K && K % 8 == 0 &&
         cuda_fused::aligned16(weight.data_ptr()) && weight.size(0) < (1 << 30) && K < (1 << 30);
}

// The row-invariant kernels' inputs: x (and its contiguous copy xc) and a [N, K] weight they can
// take; shapes they cannot take are refused, not sent elsewhere.
void need_row_invariant_inputs(const at::Tensor& x, const at::Tensor& xc, const at::Tensor& weight, int64_t K,
                               const char* who) {
  need(kernel_shapes(x, weight, K), who,
       "rows kept apart need bf16/fp16 CUDA x and a contiguous [N, K] weight of its dtype, K a multiple of 8");
  need(cuda_fused::aligned16(xc.data_ptr()), who, "x must be 16-byte aligned");
}

// linear_cuda; read_once: the last (or only) launch that reads `weight` in this step.
at::Tensor gemv_or_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool read_once,
                          bool rows_apart = false, bool prefill = false) {
  const int64_t K = x.size(-1);
  const int64_t rows = K > 0 ? x.numel() / K : 0;
  if (rows_apart && (prefill || !decode_linear_gemv())) {
    // Every row through a row-invariant kernel (a prefill pass's tokens: the tiled one; decode
    // steps: the one that streams the weights): any other path would make a row's bits depend on
    // the batch, so shapes they cannot take are refused, not sent elsewhere.
    const at::Tensor xc = x.contiguous();
    need_row_invariant_inputs(x, xc, weight, K, "linear_cuda");
    c10::cuda::CUDAGuard guard(x.device());
    at::Tensor y = at::empty(out_shape(x, weight.size(0)), x.options());
    if (rows == 0) return y;
    const int N = static_cast<int>(weight.size(0));
    launched(prefill ? cuda_fused::prefill_linear(dtype_of(x), xc.data_ptr(), weight.data_ptr(), y.data_ptr(), rows,
                                                  N, static_cast<int>(K), stream(), cuda_pdl_enabled())
                     : cuda_fused::mma_linear(dtype_of(x), xc.data_ptr(), weight.data_ptr(), y.data_ptr(), rows, N,
                                              static_cast<int>(K), cuda_fused::mma_linear_k_splits(N), read_once,
                                              stream(), cuda_pdl_enabled()),
             "linear_cuda");
    return bias.defined() ? y + bias : y;
  }
  if (rows_apart && rows > 8 && x.is_contiguous()) {
    const at::Tensor x2 = x.reshape({rows, K});
    std::vector<at::Tensor> parts;
    for (int64_t r = 0; r < rows; r += 8)
      parts.push_back(gemv_or_linear(x2.narrow(0, r, std::min<int64_t>(8, rows - r)), weight, bias, r + 8 >= rows));
    return at::cat(parts, 0).view(out_shape(x, weight.size(0)));
  }
  const bool gemv = kernel_shapes(x, weight, K) && x.is_contiguous() && rows >= 1 && rows <= 8 &&
                    cuda_fused::aligned16(x.data_ptr());
  if (!gemv) return at::linear(x, weight, bias);
  c10::cuda::CUDAGuard guard(x.device());
  at::Tensor y = at::empty(out_shape(x, weight.size(0)), x.options());
  launched(cuda_fused::gemv(dtype_of(x), x.data_ptr(), weight.data_ptr(), y.data_ptr(), static_cast<int>(rows),
                            static_cast<int>(weight.size(0)), static_cast<int>(K), gemv_wpc(weight.size(0)), read_once, stream(),
                            cuda_pdl_enabled()),
           "linear_cuda");
  return bias.defined() ? y + bias : y;
}

}  // namespace

at::Tensor linear_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool rows_apart,
                       bool prefill) {
  return gemv_or_linear(x, weight, bias, true, rows_apart, prefill);
}

namespace {
// FLEXGEN_CUDA_DECODE_EPILOGUE: unset or `fused` (launches of 1-8 rows fold), `separate` (none
// does), `all` (every launch folds, slower above 8 rows: for A/B runs).
const std::string& epilogue_mode() {
  static const std::string mode =
      cuda_env::env_switch("FLEXGEN_CUDA_DECODE_EPILOGUE", {"fused", "separate", "all"});
  return mode;
}

int64_t rows_of(const at::Tensor& x) {
  const int64_t K = x.size(-1);
  return K > 0 ? x.numel() / K : 0;
}

// FLEXGEN_CUDA_LAYER_KERNEL: 1 (a batch-1 decode step runs each layer's projections after the
// attention as one persistent launch: the same bits, slower on the H200 today, see docs/cuda.md),
// unset or 0 (one launch each, the default).
bool layer_kernel_switch() {
  static const bool on = cuda_env::env_switch("FLEXGEN_CUDA_LAYER_KERNEL", {"0", "1"}) == "1";
  return on;
}
}  // namespace

void read_fused_ops_switches() {
  layer_kernel_switch();
  decode_linear_gemv();
  gemv_wpc(1);
  epilogue_mode();
  cuda_fused::mma_linear_read_switches();
  cuda_fused::prefill_linear_read_switches();
  cuda_fused::decode_layer_read_switches();
}

bool cuda_decode_epilogues_fused(int64_t rows) {
  return epilogue_mode() != "separate" && !decode_linear_gemv() && (rows <= 8 || epilogue_mode() == "all");
}

namespace {

// The row-invariant decode linear with `ep` (its kind, bias and buffers set but for x, w, y).
void linear_epilogue(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, void* y,
                     cuda_fused::MmaEpilogue ep, const char* who) {
  const int64_t K = x.size(-1), rows = rows_of(x);
  need(x.is_contiguous(), who, "x must be contiguous");
  need_row_invariant_inputs(x, x, weight, K, who);
  const int N = static_cast<int>(weight.size(0));
  if (bias.defined()) {
    half_cuda(bias, who, "bias", &x);
    need(bias.numel() == N, who, "bias must be [" + std::to_string(N) + "]");
    ep.bias = bias.data_ptr();
  }
  if (rows == 0) return;
  launched(cuda_fused::mma_linear_epilogue(dtype_of(x), x.data_ptr(), weight.data_ptr(), y, rows, N,
                                           static_cast<int>(K), cuda_fused::mma_linear_k_splits(N), true, ep,
                                           stream(), cuda_pdl_enabled()),
           who);
}

// The RopeCache epilogue (cos/sin [B, 1, 1, D], q [B, H, 1, D] written, k/v caches [B, Hkv, T, D]
// at first_slot[b]), as linear_rope_qkv_cuda and the decode-layer kernel's q|k|v projection use it.
cuda_fused::MmaEpilogue rope_cache_epilogue(const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& q,
                                            int64_t heads, int64_t kv_heads, int64_t D, const at::Tensor& k_cache,
                                            const at::Tensor& v_cache, const at::Tensor& first_slot) {
  cuda_fused::MmaEpilogue ep;
  ep.kind = cuda_fused::MmaEpilogue::Kind::RopeCache;
  ep.cos = cos.data_ptr(), ep.sin = sin.data_ptr(), ep.q_out = q.data_ptr();
  ep.k_cache = k_cache.data_ptr(), ep.v_cache = v_cache.data_ptr(), ep.first_slot = first_slot.data_ptr<int64_t>();
  ep.cs0 = k_cache.stride(0), ep.cs1 = k_cache.stride(1), ep.cs2 = k_cache.stride(2);
  ep.H = static_cast<int>(heads), ep.Hkv = static_cast<int>(kv_heads), ep.D = static_cast<int>(D);
  return ep;
}

}  // namespace

at::Tensor linear_rope_qkv_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                const at::Tensor& cos, const at::Tensor& sin, int64_t heads, int64_t kv_heads,
                                const at::Tensor& k_cache, const at::Tensor& v_cache, const at::Tensor& first_slot) {
  const char* who = "linear_rope_qkv_cuda";
  half_cuda(x, who, "x");
  need(x.dim() == 3 && weight.dim() == 2, who, "x must be [B, L, hidden] and the weight [(H + 2 Hkv) D, hidden]");
  const int64_t D = check_rope_inputs(x, weight.size(0), cos, sin, heads, kv_heads, k_cache, v_cache, first_slot, who);
  if (!cuda_decode_epilogues_fused(rows_of(x)) || x.size(1) != 1 || D % 16 != 0)
    return rope_qkv_cuda(linear_cuda(x, weight, bias, true), cos, sin, heads, kv_heads, k_cache, v_cache, first_slot);
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t B = x.size(0);
  at::Tensor q = at::empty({B, heads, 1, D}, x.options());
  linear_epilogue(x, weight, bias, nullptr,
                  rope_cache_epilogue(cos, sin, q, heads, kv_heads, D, k_cache, v_cache, first_slot), who);
  return q;
}

at::Tensor linear_silu_mul_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const char* who = "linear_silu_mul_cuda";
  half_cuda(x, who, "x");
  need(weight.dim() == 2 && weight.size(0) % 2 == 0, who, "the weight must be [2 I, K] (gate | up)");
  if (!cuda_decode_epilogues_fused(rows_of(x)) || weight.size(0) % 16 != 0)
    return silu_mul_cuda(linear_cuda(x, weight, bias, true));
  c10::cuda::CUDAGuard guard(x.device());
  at::Tensor y = at::empty(out_shape(x, weight.size(0) / 2), x.options());
  cuda_fused::MmaEpilogue ep;
  ep.kind = cuda_fused::MmaEpilogue::Kind::SiluMul;
  linear_epilogue(x, weight, bias, y.data_ptr(), ep, who);
  return y;
}

at::Tensor prefill_linear_silu_mul_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const char* who = "prefill_linear_silu_mul_cuda";
  half_cuda(x, who, "x");
  need(weight.dim() == 2 && weight.size(0) % 2 == 0, who, "the weight must be [2 I, K] (gate | up)");
  const int64_t K = x.size(-1), inter = weight.size(0) / 2, rows = rows_of(x);
  if (bias.defined() || inter % 8 != 0 || !cuda_fused::prefill_linear_silu_mul_fused(rows))
    return silu_mul_cuda(linear_cuda(x, weight, bias, true, true));
  const at::Tensor xc = x.contiguous();
  need_row_invariant_inputs(x, xc, weight, K, who);
  c10::cuda::CUDAGuard guard(x.device());
  at::Tensor y = at::empty(out_shape(x, inter), x.options());
  launched(cuda_fused::prefill_linear_silu_mul(dtype_of(x), xc.data_ptr(), weight.data_ptr(), y.data_ptr(), rows,
                                               static_cast<int>(inter), static_cast<int>(K), stream(),
                                               cuda_pdl_enabled()),
           who);
  return y;
}

bool cuda_decode_layer_kernel(int64_t rows) {
  return rows == 1 && layer_kernel_switch() && cuda_decode_epilogues_fused(rows);
}

at::Tensor decode_layer_tail_cuda(at::Tensor& h, const at::Tensor& a, const DecodeLayerTail& layer,
                                  const NextLayerQkv* next) {
  const char* who = "decode_layer_tail_cuda";
  half_cuda(h, who, "h");
  half_cuda(a, who, "a", &h);
  need(h.dim() == 3 && h.size(0) == 1 && h.size(1) == 1 && rows_of(a) == 1, who,
       "h must be [1, 1, hidden] and a one row (a batch-1 decode step)");
  const int64_t hidden = h.size(2), I = layer.gate_up_proj.size(0) / 2;
  const auto weight = [&](const at::Tensor& w, int64_t N, int64_t K, const char* name) {
    half_cuda(w, who, name, &h);
    need(w.dim() == 2 && w.size(0) == N && w.size(1) == K && cuda_fused::aligned16(w.data_ptr()), who,
         std::string(name) + " must be [" + std::to_string(N) + ", " + std::to_string(K) + "]");
  };
  const auto norm_weight = [&](const at::Tensor& w, const char* name) {
    half_cuda(w, who, name, &h);
    need(w.numel() == hidden && cuda_fused::aligned16(w.data_ptr()), who,
         std::string(name) + " must be [" + std::to_string(hidden) + "]");
  };
  weight(layer.o_proj, hidden, a.size(-1), "o_proj");
  weight(layer.gate_up_proj, 2 * I, hidden, "gate_up_proj");
  weight(layer.down_proj, hidden, I, "down_proj");
  norm_weight(layer.post_norm, "post_norm");
  need(cuda_fused::aligned16(a.data_ptr()) && cuda_fused::aligned16(h.data_ptr()), who,
       "h and a must be 16-byte aligned");
  c10::cuda::CUDAGuard guard(h.device());
  const at::Tensor act = at::empty({I}, h.options());
  cuda_fused::DecodeLayerChain c;
  c.h = h.data_ptr();
  c.eps = static_cast<float>(layer.eps);
  c.barrier = static_cast<int>(layer.index % cuda_fused::kDecodeLayerBarriers);
  const auto project = [&](int p, const at::Tensor& w, const void* x, const at::Tensor* norm) {
    cuda_fused::DecodeLayerProjection& pr = c.proj[p];
    pr.w = w.data_ptr();
    pr.N = static_cast<int>(w.size(0));
    pr.K = static_cast<int>(w.size(1));
    pr.x = x;
    pr.norm_weight = norm ? norm->data_ptr() : nullptr;
    return &pr;
  };
  project(0, layer.o_proj, a.data_ptr(), nullptr)->add_to_residual = true;
  cuda_fused::DecodeLayerProjection* gate_up = project(1, layer.gate_up_proj, nullptr, &layer.post_norm);
  gate_up->ep.kind = cuda_fused::MmaEpilogue::Kind::SiluMul;
  gate_up->y = act.data_ptr();
  project(2, layer.down_proj, act.data_ptr(), nullptr)->add_to_residual = true;
  c.count = 3;
  at::Tensor q;
  if (next != nullptr) {
    weight(next->qkv_proj, next->qkv_proj.size(0), hidden, "qkv_proj");
    norm_weight(next->input_norm, "input_norm");
    const int64_t D = check_rope_inputs(h, next->qkv_proj.size(0), next->cos, next->sin, next->heads, next->kv_heads,
                                        next->k_cache, next->v_cache, next->first_slot, who);
    need(D % 16 == 0, who, "head_dim must be a multiple of 16");
    q = at::empty({1, next->heads, 1, D}, h.options());
    project(3, next->qkv_proj, nullptr, &next->input_norm)->ep =
        rope_cache_epilogue(next->cos, next->sin, q, next->heads, next->kv_heads, D, next->k_cache, next->v_cache,
                            next->first_slot);
    c.count = 4;
  }
  launched(cuda_fused::decode_layer_chain(dtype_of(h), c, stream(), cuda_pdl_enabled()), who);
  return q;
}

}  // namespace flexgen
