// Fused elementwise / row kernels of the LLaMA forward pass (see flexgen/fused_ops_cuda.h).
// bf16 or fp16 in and out (one element type per call); every intermediate that libtorch would
// round to that type is rounded here too.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "fused_ops_params.h"
#include "half_math.cuh"
#include "kernel_module.cuh"
#include "llama_elementwise.cuh"
#include "pdl.cuh"
#include "step_timeline.cuh"

FLEXGEN_TIMELINE_UNIT()

namespace flexgen {
namespace cuda_fused {

namespace {

using cuda_pdl::pdl_trigger;
using cuda_pdl::pdl_wait;

using cuda_half::f;
using cuda_half::f2;
using cuda_half::Pair;
using cuda_half::to;

// Block-wide sum (blockDim.x a multiple of 32, at most 1024): each warp's by warp_sum, then the
// warps' sums by warp_sum in warp 0, zeros past the last warp (the persistent decode-layer kernel's
// norms, decode_layer_kernel.cu, add a row's squares in this order too).
__device__ float block_sum(float v) {
  __shared__ float part[32];
  v = cuda_half::warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  v = threadIdx.x < nw ? part[threadIdx.x] : 0.f;
  if (warp == 0) v = cuda_half::warp_sum(v);
  __shared__ float total;
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

// 8 consecutive elements of a row (one 16-byte load when the row is 16-byte aligned and the chunk
// is whole; element loads otherwise), as floats; elements past n read as 0.
template <typename T>
__device__ __forceinline__ void load8(const T* __restrict__ p, int i0, int n, bool vec, float (&v)[8]) {
  if (vec && i0 + 8 <= n) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p + i0);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int k = 0; k < 8; ++k) v[k] = f(e[k]);
  } else {
#pragma unroll
    for (int k = 0; k < 8; ++k) v[k] = i0 + k < n ? f(p[i0 + k]) : 0.f;
  }
}

template <typename T>
__device__ __forceinline__ void store8(T* __restrict__ p, int i0, int n, bool vec, const float (&v)[8]) {
  if (vec && i0 + 8 <= n) {
    uint4 raw;
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int k = 0; k < 8; ++k) e[k] = to<T>(v[k]);
    *reinterpret_cast<uint4*>(p + i0) = raw;
  } else {
#pragma unroll
    for (int k = 0; k < 8; ++k)
      if (i0 + k < n) p[i0 + k] = to<T>(v[k]);
  }
}

// One block per row; thread t holds chunks c = t + blockDim.x i (i < C) of 8 elements in registers,
// every load issued before the first use (the norm weight even before waiting for the previous
// kernel). ADD: h = T(h + delta) first (written back). Sum of squares: each thread's elements in
// order, then block_sum; the arithmetic depends on n and the block size (a function of n) only.
// Blocks of up to 1024 threads: registers are bounded for them (without the bound the kernel of 4
// chunks a thread, rows of 8193-32768 elements, took 80-118 registers and failed to launch).
template <typename T, bool ADD, int C>
__global__ void __launch_bounds__(1024) rms_norm_kernel(T* __restrict__ h, const T* __restrict__ delta, const T* __restrict__ w,
                                T* __restrict__ out, int n, float eps, bool early) {
  FLEXGEN_TIMELINE_NOW(timeline_start);
  const int64_t row = blockIdx.x;
  T* x = h + row * n;
  const bool vec = n % 8 == 0;
  float wv[C][8], xv[C][8];
#pragma unroll
  for (int i = 0; i < C; ++i) load8(w, 8 * (threadIdx.x + blockDim.x * i), n, vec, wv[i]);
  // The next kernel (a projection) may launch and fetch its weights meanwhile: with `early`
  // (cuda_pdl::trigger_early) while the kernel before this one still runs.
  if (early) pdl_trigger();
  pdl_wait();
  if (!early) pdl_trigger();
  FLEXGEN_TIMELINE_NOW(timeline_waited);
#pragma unroll
  for (int i = 0; i < C; ++i) load8(x, 8 * (threadIdx.x + blockDim.x * i), n, vec, xv[i]);
  if (ADD) {
    float dv[C][8];
#pragma unroll
    for (int i = 0; i < C; ++i) load8(delta + row * n, 8 * (threadIdx.x + blockDim.x * i), n, vec, dv[i]);
#pragma unroll
    for (int i = 0; i < C; ++i) {
#pragma unroll
      for (int k = 0; k < 8; ++k) xv[i][k] = f(to<T>(xv[i][k] + dv[i][k]));
      store8(x, 8 * (threadIdx.x + blockDim.x * i), n, vec, xv[i]);
    }
  }
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < C; ++i) ss = cuda_half::sum_squares8(xv[i], ss);
  const float r = cuda_half::rms_reciprocal(block_sum(ss), n, eps);
#pragma unroll
  for (int i = 0; i < C; ++i) {
    float ov[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) ov[k] = f(cuda_half::rms_scaled<T>(xv[i][k], wv[i][k], r));
    store8(out + row * n, 8 * (threadIdx.x + blockDim.x * i), n, vec, ov);
  }
  FLEXGEN_TIMELINE_STAMP(ADD ? ::flexgen::cuda_timeline::kAddNorm : ::flexgen::cuda_timeline::kNorm, w, n,
                         timeline_start, timeline_waited);
}

template <typename T>
__global__ void silu_mul_kernel(const T* gu, T* out, int64_t rows, int inter) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  pdl_wait();
  pdl_trigger();
  if (i >= rows * inter) return;
  const int64_t r = i / inter;
  const int c = static_cast<int>(i - r * inter);
  out[i] = cuda_half::silu_times(gu[r * 2 * inter + c], gu[r * 2 * inter + inter + c]);
}

// The same per element, 8 consecutive elements a thread (16-byte loads and stores): rows whose
// intermediate size is a multiple of 8 at 16-byte aligned addresses.
template <typename T>
__global__ void silu_mul_vec_kernel(const T* __restrict__ gu, T* __restrict__ out, int64_t rows, int inter) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // chunk of 8
  pdl_wait();
  pdl_trigger();
  const int per = inter / 8;
  if (j >= rows * per) return;
  const int64_t r = j / per;
  const int c = static_cast<int>(j - r * per) * 8;
  const uint4 g = *reinterpret_cast<const uint4*>(gu + r * 2 * inter + c);
  const uint4 u = *reinterpret_cast<const uint4*>(gu + r * 2 * inter + inter + c);
  const T* ge = reinterpret_cast<const T*>(&g);
  const T* ue = reinterpret_cast<const T*>(&u);
  uint4 o;
  T* oe = reinterpret_cast<T*>(&o);
#pragma unroll
  for (int k = 0; k < 8; ++k) oe[k] = cuda_half::silu_times(ge[k], ue[k]);
  *reinterpret_cast<uint4*>(out + r * inter + c) = o;
}

// grid (B * L, H + 2 Hkv), block D / 2: pair (i, i + D/2) of one head of one token. The token's
// q|k|v come from row p.rows[token] of packed q|k|v (zeros for -1: those of a zero row, as an
// unpacked layout with zeros at the padding gives) or, without p.rows, from row `token`.
template <typename T>
__global__ void rope_qkv_kernel(RopeParams p) {
  const int64_t tok = blockIdx.x;  // b * L + l
  const int64_t b = tok / p.L, l = tok - b * p.L;
  const int head = blockIdx.y, i = threadIdx.x, half = p.D / 2;
  pdl_wait();
  pdl_trigger();
  const auto* qkv = static_cast<const T*>(p.qkv);
  auto* k_cache = static_cast<T*>(p.k_cache);
  auto* v_cache = static_cast<T*>(p.v_cache);
  const int64_t row = p.rows != nullptr ? p.rows[tok] : tok;
  const T* src = qkv + max(row, int64_t{0}) * static_cast<int64_t>(p.H + 2 * p.Hkv) * p.D + head * p.D;
  const T x1 = row >= 0 ? src[i] : cuda_half::to<T>(0.f), x2 = row >= 0 ? src[i + half] : cuda_half::to<T>(0.f);
  const int64_t slot = p.first_slot[b] + l;
  if (head >= p.H + p.Hkv) {  // v: copied to the cache as is
    const int kvh = head - p.H - p.Hkv;
    T* dst = v_cache + b * p.cs0 + kvh * p.cs1 + slot * p.cs2;
    dst[i] = x1;
    dst[i + half] = x2;
    return;
  }
  const T* cs = static_cast<const T*>(p.cos) + tok * p.D;
  const T* sn = static_cast<const T*>(p.sin) + tok * p.D;
  T o1, o2;
  cuda_half::rope_pair(f(x1), f(x2), cs[i], sn[i], cs[i + half], sn[i + half], o1, o2);
  T* dst;
  if (head < p.H) {
    dst = static_cast<T*>(p.q_out) + ((b * p.H + head) * static_cast<int64_t>(p.L) + l) * p.D;
  } else {
    const int kvh = head - p.H;
    dst = k_cache + b * p.cs0 + kvh * p.cs1 + slot * p.cs2;
  }
  dst[i] = o1;
  dst[i + half] = o2;
}

// The same per element, 8 pairs a thread (16-byte loads and stores): grid (B * L, heads / kRopeHeads
// rounded up), block kRopeHeads x D / 16 threads; thread (hh, j) takes elements 8 j .. 8 j + 7 and
// their partners D/2 on of head blockIdx.y * kRopeHeads + hh. For head_dim % 16 == 0 and 16-byte
// aligned rows (qkv, cos/sin, q, cache slots), head_dim <= 1024 (a block's threads).
constexpr int kRopeHeads = 16;
template <typename T>
__global__ void rope_qkv_vec_kernel(RopeParams p) {
  const int64_t tok = blockIdx.x;  // b * L + l
  const int64_t b = tok / p.L, l = tok - b * p.L;
  const int per = p.D / 16, half = p.D / 2;
  const int head = blockIdx.y * kRopeHeads + static_cast<int>(threadIdx.x) / per;
  const int i = (static_cast<int>(threadIdx.x) % per) * 8;
  pdl_wait();
  pdl_trigger();
  if (head >= p.H + 2 * p.Hkv) return;
  const int64_t row = p.rows != nullptr ? p.rows[tok] : tok;
  const T* src =
      static_cast<const T*>(p.qkv) + max(row, int64_t{0}) * static_cast<int64_t>(p.H + 2 * p.Hkv) * p.D + head * p.D;
  const int64_t slot = p.first_slot[b] + l;
  const uint4 zero = make_uint4(0u, 0u, 0u, 0u);  // +0 in bf16 and fp16
  const uint4 a1 = row >= 0 ? *reinterpret_cast<const uint4*>(src + i) : zero;
  const uint4 a2 = row >= 0 ? *reinterpret_cast<const uint4*>(src + i + half) : zero;
  if (head >= p.H + p.Hkv) {  // v: copied to the cache as is
    T* dst = static_cast<T*>(p.v_cache) + b * p.cs0 + (head - p.H - p.Hkv) * p.cs1 + slot * p.cs2;
    *reinterpret_cast<uint4*>(dst + i) = a1;
    *reinterpret_cast<uint4*>(dst + i + half) = a2;
    return;
  }
  const T* cs = static_cast<const T*>(p.cos) + tok * p.D;
  const T* sn = static_cast<const T*>(p.sin) + tok * p.D;
  const uint4 c1 = *reinterpret_cast<const uint4*>(cs + i), c2 = *reinterpret_cast<const uint4*>(cs + i + half);
  const uint4 s1 = *reinterpret_cast<const uint4*>(sn + i), s2 = *reinterpret_cast<const uint4*>(sn + i + half);
  const T *x1 = reinterpret_cast<const T*>(&a1), *x2 = reinterpret_cast<const T*>(&a2);
  const T *c1e = reinterpret_cast<const T*>(&c1), *c2e = reinterpret_cast<const T*>(&c2);
  const T *s1e = reinterpret_cast<const T*>(&s1), *s2e = reinterpret_cast<const T*>(&s2);
  uint4 o1, o2;
  T *o1e = reinterpret_cast<T*>(&o1), *o2e = reinterpret_cast<T*>(&o2);
#pragma unroll
  for (int k = 0; k < 8; ++k) cuda_half::rope_pair(f(x1[k]), f(x2[k]), c1e[k], s1e[k], c2e[k], s2e[k], o1e[k], o2e[k]);
  T* dst = head < p.H ? static_cast<T*>(p.q_out) + ((b * p.H + head) * static_cast<int64_t>(p.L) + l) * p.D
                      : static_cast<T*>(p.k_cache) + b * p.cs0 + (head - p.H) * p.cs1 + slot * p.cs2;
  *reinterpret_cast<uint4*>(dst + i) = o1;
  *reinterpret_cast<uint4*>(dst + i + half) = o2;
}

// y[m, n] = sum_k x[m, k] w[n, k] for M rows of x (decode steps): WPC warps per output column n
// (8 / WPC columns per 256-thread block), 16-byte weight loads streamed once (not kept in L1),
// issued U at a time before their FMAs, fp32 accumulation, result rounded once to T.
// Arithmetic of one output: lane l of the column's warp p sums, in increasing order, the 8-element
// chunks c = 32 p + l + 32 WPC i (one FMA chain over the chunk's pairs); each warp sums its lanes by
// a butterfly; the WPC warp sums are added in warp order. It depends on K and WPC only, never on M
// or on the other rows, so each row's result is the same alone or in a batch (batch invariance);
// WPC is chosen from N alone (gemv_warps_per_column).
template <typename T, int M, int WPC>
__global__ void __launch_bounds__(256) gemv_kernel(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y,
                                                   int N, int K, bool read_once) {
  using T2 = typename Pair<T>::type;
  constexpr int U = 4;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int part = warp % WPC;
  const int n = blockIdx.x * (8 / WPC) + warp / WPC;
  const bool valid = n < N;
  const int chunks = K / 8, stride = 32 * WPC, first = 32 * part + lane;
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(valid ? n : 0) * K);
  // The weights do not depend on the previous kernel: start fetching them into L2 first.
  if (valid)
    for (int c = first, i = 0; c < chunks && i < U; c += stride, ++i) asm volatile("prefetch.global.L2 [%0];" ::"l"(wr + c));
  pdl_wait();
  // Weights read once per step (one launch for all rows) go into L2 as the first to evict, so that
  // they do not push out what the step reads again (the KV cache, activations, masks); weights that
  // the next launch reads again (rows in chunks of 8) are cached as usual.
  uint64_t policy;
  if (read_once)
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  else
    asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
  if (valid) {
    for (int c0 = first; c0 < chunks; c0 += U * stride) {
      uint4 wv[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = c0 + u * stride;
        if (c < chunks)
          asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
                       : "=r"(wv[u].x), "=r"(wv[u].y), "=r"(wv[u].z), "=r"(wv[u].w)
                       : "l"(wr + c), "l"(policy));
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = c0 + u * stride;
        if (c >= chunks) break;
        const T2* wp = reinterpret_cast<const T2*>(&wv[u]);
        float2 wf[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) wf[j] = f2(wp[j]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint4 xv = cuda_pdl::load_after_wait(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * K) + c);
          const T2* xp = reinterpret_cast<const T2*>(&xv);
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const float2 xf = f2(xp[j]);
            acc[m] = fmaf(xf.x, wf[j].x, fmaf(xf.y, wf[j].y, acc[m]));
          }
        }
      }
    }
  }
  pdl_trigger();
#pragma unroll
  for (int m = 0; m < M; ++m)
    for (int o = 16; o > 0; o >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
  if (WPC == 1) {
    if (valid && lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) y[static_cast<int64_t>(m) * N + n] = to<T>(acc[m]);
    }
    return;
  }
  __shared__ float part_sum[8][M];
  if (lane == 0) {
#pragma unroll
    for (int m = 0; m < M; ++m) part_sum[warp][m] = acc[m];
  }
  __syncthreads();
  if (valid && part == 0 && lane == 0) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float v = part_sum[warp][m];
      for (int p = 1; p < WPC; ++p) v += part_sum[warp + p][m];
      y[static_cast<int64_t>(m) * N + n] = to<T>(v);
    }
  }
}

// RoPE tables of `tokens` positions: cos/sin [tokens, D] = T(cos(f)), T(sin(f)) with f = float(position)
// x inv_freq[j mod D/2] in fp32, each half of a row the same (libtorch's positions.to(float) x
// inv_freq, cat, cos / sin, to(T): the same functions and roundings, one launch instead of seven).
template <typename T>
__global__ void rope_tables_kernel(const int64_t* __restrict__ positions, const float* __restrict__ inv_freq,
                                   T* __restrict__ cos_out, T* __restrict__ sin_out, int64_t tokens, int half) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  pdl_wait();
  pdl_trigger();
  if (i >= tokens * half) return;
  const int64_t t = i / half;
  const int j = static_cast<int>(i - t * half);
  const float f = static_cast<float>(positions[t]) * inv_freq[j];
  const T c = to<T>(cosf(f)), s = to<T>(sinf(f));
  T* cr = cos_out + t * 2 * half;
  T* sr = sin_out + t * 2 * half;
  cr[j] = c, cr[j + half] = c;
  sr[j] = s, sr[j + half] = s;
}

// Launch with the PDL attribute when `pdl`, else a plain launch.
template <typename... Params, typename... Args>
int launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t st, bool pdl, Args... args) {
  return static_cast<int>(cuda_pdl::launch(kernel, grid, block, 0, st, pdl, args...));
}

// The host entry points: one template per kernel, instantiated for each element type.
// Threads and chunks per thread of the norm for rows of n: one 8-element chunk per thread up to
// 1024 threads (n <= 8192), then up to 4 chunks per thread (n <= 32768).
template <typename T, bool ADD>
int rms_norm_launch(T* h, const T* delta, const T* w, T* out, int64_t rows, int n, float eps, cudaStream_t st,
                    bool pdl) {
  const int chunks = (n + 7) / 8;
  const bool early = cuda_pdl::trigger_early(pdl, rows);
  const dim3 grid(static_cast<unsigned>(rows));
  if (chunks <= 1024) {
    const dim3 block((chunks + 31) / 32 * 32);
    return launch(rms_norm_kernel<T, ADD, 1>, grid, block, st, pdl, h, delta, w, out, n, eps, early);
  }
  if (chunks <= 4096)
    return launch(rms_norm_kernel<T, ADD, 4>, grid, dim3(1024), st, pdl, h, delta, w, out, n, eps, early);
  return static_cast<int>(cudaErrorInvalidValue);
}

template <typename T>
int rms_norm_t(void* h, const void* delta, const void* w, void* out, int64_t rows, int n, float eps, cudaStream_t st,
               bool pdl) {
  auto* hp = static_cast<T*>(h);
  const auto* dp = static_cast<const T*>(delta);
  const auto* wp = static_cast<const T*>(w);
  auto* op = static_cast<T*>(out);
  if (delta != nullptr) return rms_norm_launch<T, true>(hp, dp, wp, op, rows, n, eps, st, pdl);
  return rms_norm_launch<T, false>(hp, dp, wp, op, rows, n, eps, st, pdl);
}

template <typename T>
int silu_mul_t(const void* gu, void* out, int64_t rows, int inter, cudaStream_t st, bool pdl) {
  if (inter % 8 == 0 && aligned16(gu) && aligned16(out)) {
    const unsigned blocks = static_cast<unsigned>((rows * (inter / 8) + 255) / 256);
    return launch(silu_mul_vec_kernel<T>, dim3(blocks), dim3(256), st, pdl, static_cast<const T*>(gu),
                  static_cast<T*>(out), rows, inter);
  }
  const int64_t total = rows * inter;
  const unsigned blocks = static_cast<unsigned>((total + 255) / 256);
  return launch(silu_mul_kernel<T>, dim3(blocks), dim3(256), st, pdl, static_cast<const T*>(gu), static_cast<T*>(out), rows,
                inter);
}

template <typename T, int WPC>
int gemv_rows(const T* x, const T* w, T* y, int rows, int N, int K, bool read_once, cudaStream_t st, bool pdl) {
  const dim3 grid(static_cast<unsigned>((N + 8 / WPC - 1) / (8 / WPC))), block(256);
  switch (rows) {
    case 1: return launch(gemv_kernel<T, 1, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    case 2: return launch(gemv_kernel<T, 2, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    case 3: return launch(gemv_kernel<T, 3, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    case 4: return launch(gemv_kernel<T, 4, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    case 5: return launch(gemv_kernel<T, 5, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    case 6: return launch(gemv_kernel<T, 6, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    case 7: return launch(gemv_kernel<T, 7, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    case 8: return launch(gemv_kernel<T, 8, WPC>, grid, block, st, pdl, x, w, y, N, K, read_once);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

template <typename T>
int gemv_t(const void* x, const void* w, void* y, int rows, int N, int K, int wpc, bool read_once, cudaStream_t st,
           bool pdl) {
  const auto* xp = static_cast<const T*>(x);
  const auto* wp = static_cast<const T*>(w);
  auto* yp = static_cast<T*>(y);
  switch (wpc) {
    case 1: return gemv_rows<T, 1>(xp, wp, yp, rows, N, K, read_once, st, pdl);
    case 2: return gemv_rows<T, 2>(xp, wp, yp, rows, N, K, read_once, st, pdl);
    case 4: return gemv_rows<T, 4>(xp, wp, yp, rows, N, K, read_once, st, pdl);
    case 8: return gemv_rows<T, 8>(xp, wp, yp, rows, N, K, read_once, st, pdl);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
}

template <typename T>
int rope_qkv_t(const RopeParams& p, cudaStream_t st, bool pdl) {
  const bool vec = p.D % 16 == 0 && kRopeHeads * p.D / 16 <= 1024 && p.cs0 % 8 == 0 && p.cs1 % 8 == 0 &&
                   p.cs2 % 8 == 0 && aligned16(p.qkv) && aligned16(p.cos) && aligned16(p.sin) && aligned16(p.q_out) &&
                   aligned16(p.k_cache) && aligned16(p.v_cache);
  if (vec) {
    const int heads = p.H + 2 * p.Hkv;
    const dim3 grid(static_cast<unsigned>(p.B * p.L), static_cast<unsigned>((heads + kRopeHeads - 1) / kRopeHeads));
    return launch(rope_qkv_vec_kernel<T>, grid, dim3(kRopeHeads * p.D / 16), st, pdl, p);
  }
  const dim3 grid(static_cast<unsigned>(p.B * p.L), static_cast<unsigned>(p.H + 2 * p.Hkv));
  return launch(rope_qkv_kernel<T>, grid, dim3(p.D / 2), st, pdl, p);
}

}  // namespace

int rms_norm(DType t, void* h, const void* delta, const void* w, void* out, int64_t rows, int n, float eps,
             void* stream, bool pdl) {
  const auto st = static_cast<cudaStream_t>(stream);
  return t == DType::BF16 ? rms_norm_t<__nv_bfloat16>(h, delta, w, out, rows, n, eps, st, pdl)
                          : rms_norm_t<__half>(h, delta, w, out, rows, n, eps, st, pdl);
}

int silu_mul(DType t, const void* gu, void* out, int64_t rows, int inter, void* stream, bool pdl) {
  const auto st = static_cast<cudaStream_t>(stream);
  return t == DType::BF16 ? silu_mul_t<__nv_bfloat16>(gu, out, rows, inter, st, pdl)
                          : silu_mul_t<__half>(gu, out, rows, inter, st, pdl);
}

int gemv_warps_per_column(int N) {
  int wpc = 1;
  while (wpc < 8 && N * wpc < 8192) wpc *= 2;
  return wpc;
}

int gemv(DType t, const void* x, const void* w, void* y, int rows, int N, int K, int wpc, bool read_once,
         void* stream, bool pdl) {
  const auto st = static_cast<cudaStream_t>(stream);
  return t == DType::BF16 ? gemv_t<__nv_bfloat16>(x, w, y, rows, N, K, wpc, read_once, st, pdl)
                          : gemv_t<__half>(x, w, y, rows, N, K, wpc, read_once, st, pdl);
}

int rope_tables(DType t, const int64_t* positions, const float* inv_freq, void* cos, void* sin, int64_t tokens,
                int D, void* stream, bool pdl) {
  if (D <= 0 || D % 2 != 0) return static_cast<int>(cudaErrorInvalidValue);
  const auto st = static_cast<cudaStream_t>(stream);
  const int half = D / 2;
  const unsigned blocks = static_cast<unsigned>((tokens * half + 255) / 256);
  if (blocks == 0) return 0;
  return t == DType::BF16 ? launch(rope_tables_kernel<__nv_bfloat16>, dim3(blocks), dim3(256), st, pdl, positions,
                                   inv_freq, static_cast<__nv_bfloat16*>(cos), static_cast<__nv_bfloat16*>(sin), tokens,
                                   half)
                          : launch(rope_tables_kernel<__half>, dim3(blocks), dim3(256), st, pdl, positions, inv_freq,
                                   static_cast<__half*>(cos), static_cast<__half*>(sin), tokens, half);
}

int rope_qkv(DType t, const RopeParams& p, void* stream, bool pdl) {
  const auto st = static_cast<cudaStream_t>(stream);
  return t == DType::BF16 ? rope_qkv_t<__nv_bfloat16>(p, st, pdl) : rope_qkv_t<__half>(p, st, pdl);
}

}  // namespace cuda_fused
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(fused_ops)
