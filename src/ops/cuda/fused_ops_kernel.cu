// Fused elementwise / row kernels of the LLaMA forward pass (see flexgen/fused_ops_cuda.h).
// bf16 in and out; every intermediate that libtorch would round to bf16 is rounded here too.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

namespace {

__device__ __forceinline__ float f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ __nv_bfloat16 bf(float x) { return __float2bfloat16_rn(x); }

// Block-wide sum (blockDim.x a multiple of 32, at most 1024).
__device__ float block_sum(float v) {
  __shared__ float part[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  v = threadIdx.x < nw ? part[threadIdx.x] : 0.f;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __shared__ float total;
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

// One block per row. ADD: h = bf16(h + delta) first (written back).
template <bool ADD>
__global__ void rms_norm_kernel(__nv_bfloat16* h, const __nv_bfloat16* delta, const __nv_bfloat16* w,
                                __nv_bfloat16* out, int n, float eps) {
  const int64_t row = blockIdx.x;
  __nv_bfloat16* x = h + row * n;
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float v = f(x[i]);
    if (ADD) {
      const __nv_bfloat16 s = bf(v + f(delta[row * n + i]));
      x[i] = s;
      v = f(s);
    }
    ss += v * v;
  }
  const float r = rsqrtf(block_sum(ss) / static_cast<float>(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[row * n + i] = bf(f(w[i]) * f(bf(f(x[i]) * r)));
}

__global__ void silu_mul_kernel(const __nv_bfloat16* gu, __nv_bfloat16* out, int64_t rows, int inter) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * inter) return;
  const int64_t r = i / inter;
  const int c = static_cast<int>(i - r * inter);
  const float g = f(gu[r * 2 * inter + c]);
  const __nv_bfloat16 s = bf(g / (1.f + __expf(-g)));
  out[i] = bf(f(s) * f(gu[r * 2 * inter + inter + c]));
}

// grid (B * L, H + 2 Hkv), block D / 2: pair (i, i + D/2) of one head of one token.
__global__ void rope_qkv_kernel(RopeParams p) {
  const int64_t tok = blockIdx.x;  // b * L + l
  const int64_t b = tok / p.L, l = tok - b * p.L;
  const int head = blockIdx.y, i = threadIdx.x, half = p.D / 2;
  const auto* qkv = static_cast<const __nv_bfloat16*>(p.qkv);
  auto* k_cache = static_cast<__nv_bfloat16*>(p.k_cache);
  auto* v_cache = static_cast<__nv_bfloat16*>(p.v_cache);
  const __nv_bfloat16* src = qkv + tok * static_cast<int64_t>(p.H + 2 * p.Hkv) * p.D + head * p.D;
  const int64_t slot = p.first_slot[b] + l;
  if (head >= p.H + p.Hkv) {  // v: copied to the cache as is
    const int kvh = head - p.H - p.Hkv;
    __nv_bfloat16* dst = v_cache + b * p.cs0 + kvh * p.cs1 + slot * p.cs2;
    dst[i] = src[i];
    dst[i + half] = src[i + half];
    return;
  }
  const __nv_bfloat16* cs = static_cast<const __nv_bfloat16*>(p.cos) + tok * p.D;
  const __nv_bfloat16* sn = static_cast<const __nv_bfloat16*>(p.sin) + tok * p.D;
  const float x1 = f(src[i]), x2 = f(src[i + half]);
  // q * cos + rotate_half(q) * sin, rounded after each op like the libtorch ops.
  const __nv_bfloat16 o1 = bf(f(bf(x1 * f(cs[i]))) + f(bf(-x2 * f(sn[i]))));
  const __nv_bfloat16 o2 = bf(f(bf(x2 * f(cs[i + half]))) + f(bf(x1 * f(sn[i + half]))));
  __nv_bfloat16* dst;
  if (head < p.H) {
    dst = static_cast<__nv_bfloat16*>(p.q_out) + ((b * p.H + head) * static_cast<int64_t>(p.L) + l) * p.D;
  } else {
    const int kvh = head - p.H;
    dst = k_cache + b * p.cs0 + kvh * p.cs1 + slot * p.cs2;
  }
  dst[i] = o1;
  dst[i + half] = o2;
}

// y[m, n] = sum_k x[m, k] w[n, k] for M rows of x (decode steps): one warp per output column n,
// 16-byte weight loads streamed once (not kept in L1), fp32 accumulation, bf16 result.
// PRO (what x is): kPlain x itself; kNorm RMSNorm(x) with norm_w (x = the residual stream; the
// statistics per row are computed by every block); kSilu x = [gate | up] of width 2K and the
// input is bf16(silu(gate)) * up. RES: y = bf16(y + bf16(x . w)) in place (residual add).
// Rounding points as in the unfused kernels / libtorch ops.
constexpr int kPlain = 0, kNorm = 1, kSilu = 2;

template <int M, int PRO, bool RES>
__global__ void __launch_bounds__(256) gemv_kernel(GemvParams a) {
  const auto* __restrict__ x = static_cast<const __nv_bfloat16*>(a.x);
  const auto* __restrict__ w = static_cast<const __nv_bfloat16*>(a.w);
  const auto* __restrict__ nw = static_cast<const __nv_bfloat16*>(a.norm_w);
  auto* __restrict__ y = static_cast<__nv_bfloat16*>(a.y);
  const int N = a.N, K = a.K;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n = blockIdx.x * 8 + warp;
  __shared__ float rs[8];
  if (PRO == kNorm) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float ss = 0.f;
      for (int k = threadIdx.x; k < K; k += blockDim.x) {
        const float v = f(x[static_cast<int64_t>(m) * K + k]);
        ss += v * v;
      }
      const float total = block_sum(ss);
      if (threadIdx.x == 0) rs[m] = rsqrtf(total / static_cast<float>(K) + a.eps);
    }
    __syncthreads();
  }
  if (n >= N) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(n) * K);
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
  const int chunks = K / 8;
  const int64_t xstride = PRO == kSilu ? 2 * static_cast<int64_t>(K) : K;
#pragma unroll 4
  for (int c = lane; c < chunks; c += 32) {
    uint4 wv;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(wv.x), "=r"(wv.y), "=r"(wv.z), "=r"(wv.w)
                 : "l"(wr + c));
    const __nv_bfloat16* wp = reinterpret_cast<const __nv_bfloat16*>(&wv);
    uint4 nv;
    if (PRO == kNorm) nv = __ldg(reinterpret_cast<const uint4*>(nw) + c);
    const __nv_bfloat16* np = reinterpret_cast<const __nv_bfloat16*>(&nv);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + m * xstride) + c);
      const __nv_bfloat16* xp = reinterpret_cast<const __nv_bfloat16*>(&xv);
      uint4 uv;
      if (PRO == kSilu) uv = __ldg(reinterpret_cast<const uint4*>(x + m * xstride + K) + c);
      const __nv_bfloat16* up = reinterpret_cast<const __nv_bfloat16*>(&uv);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        float xf = f(xp[j]);
        if (PRO == kNorm) xf = f(bf(f(np[j]) * f(bf(xf * rs[m]))));
        if (PRO == kSilu) xf = f(bf(f(bf(xf / (1.f + __expf(-xf)))) * f(up[j])));
        acc[m] = fmaf(xf, f(wp[j]), acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float v = acc[m];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) {
      __nv_bfloat16* out = y + static_cast<int64_t>(m) * N + n;
      *out = RES ? bf(f(*out) + f(bf(v))) : bf(v);
    }
  }
}

template <int PRO, bool RES>
int launch_gemv(const GemvParams& p, cudaStream_t st) {
  const unsigned blocks = static_cast<unsigned>((p.N + 7) / 8);
  switch (p.rows) {
    case 1: gemv_kernel<1, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    case 2: gemv_kernel<2, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    case 3: gemv_kernel<3, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    case 4: gemv_kernel<4, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    case 5: gemv_kernel<5, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    case 6: gemv_kernel<6, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    case 7: gemv_kernel<7, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    case 8: gemv_kernel<8, PRO, RES><<<blocks, 256, 0, st>>>(p); break;
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

int threads_for(int n) {
  int t = 128;
  while (t < 1024 && t * 8 < n) t *= 2;
  return t;
}

}  // namespace

int rms_norm(void* h, const void* delta, const void* w, void* out, int64_t rows, int n, float eps, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  auto* hp = static_cast<__nv_bfloat16*>(h);
  const auto* dp = static_cast<const __nv_bfloat16*>(delta);
  const auto* wp = static_cast<const __nv_bfloat16*>(w);
  auto* op = static_cast<__nv_bfloat16*>(out);
  if (delta != nullptr)
    rms_norm_kernel<true><<<static_cast<unsigned>(rows), threads_for(n), 0, st>>>(hp, dp, wp, op, n, eps);
  else
    rms_norm_kernel<false><<<static_cast<unsigned>(rows), threads_for(n), 0, st>>>(hp, dp, wp, op, n, eps);
  return static_cast<int>(cudaGetLastError());
}

int silu_mul(const void* gu, void* out, int64_t rows, int inter, void* stream) {
  const int64_t total = rows * inter;
  const unsigned blocks = static_cast<unsigned>((total + 255) / 256);
  silu_mul_kernel<<<blocks, 256, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const __nv_bfloat16*>(gu), static_cast<__nv_bfloat16*>(out), rows, inter);
  return static_cast<int>(cudaGetLastError());
}

int gemv(const GemvParams& p, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  switch (p.prologue * 2 + (p.residual ? 1 : 0)) {
    case 0: return launch_gemv<kPlain, false>(p, st);
    case 1: return launch_gemv<kPlain, true>(p, st);
    case 2: return launch_gemv<kNorm, false>(p, st);
    case 3: return launch_gemv<kNorm, true>(p, st);
    case 4: return launch_gemv<kSilu, false>(p, st);
    case 5: return launch_gemv<kSilu, true>(p, st);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

int rope_qkv(const RopeParams& p, void* stream) {
  const dim3 grid(static_cast<unsigned>(p.B * p.L), static_cast<unsigned>(p.H + 2 * p.Hkv));
  rope_qkv_kernel<<<grid, p.D / 2, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda_fused
}  // namespace flexgen
