// Fused elementwise / row kernels of the LLaMA forward pass (see flexgen/fused_ops_cuda.h).
// bf16 in and out; every intermediate that libtorch would round to bf16 is rounded here too.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "fused_ops_params.h"

namespace flexgen {
namespace cuda_fused {

namespace {

// Programmatic dependent launch (Hopper): kernels launched with the PDL attribute may start
// while the previous kernel of the stream finishes; pdl_wait() blocks until that kernel has
// completed and its writes are visible, so it comes before the first read of any input made by
// an earlier kernel (weights are not: they may be prefetched before it). pdl_trigger() lets the
// next kernel launch once every block of this one has called it (or exited).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

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
  pdl_wait();
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
  pdl_trigger();
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[row * n + i] = bf(f(w[i]) * f(bf(f(x[i]) * r)));
}

__global__ void silu_mul_kernel(const __nv_bfloat16* gu, __nv_bfloat16* out, int64_t rows, int inter) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  pdl_wait();
  pdl_trigger();
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
  pdl_wait();
  pdl_trigger();
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
template <int M>
__global__ void __launch_bounds__(256) gemv_kernel(const __nv_bfloat16* __restrict__ x,
                                                   const __nv_bfloat16* __restrict__ w, __nv_bfloat16* __restrict__ y,
                                                   int N, int K) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n = blockIdx.x * 8 + warp;
  if (n >= N) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(n) * K);
  // The weights do not depend on the previous kernel: start fetching them into L2 first.
  for (int c = lane; c < K / 8 && c < lane + 64; c += 32) asm volatile("prefetch.global.L2 [%0];" ::"l"(wr + c));
  pdl_wait();
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
  const int chunks = K / 8;
#pragma unroll 4
  for (int c = lane; c < chunks; c += 32) {
    uint4 wv;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(wv.x), "=r"(wv.y), "=r"(wv.z), "=r"(wv.w)
                 : "l"(wr + c));
    const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&wv);
    float2 wf[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) wf[j] = __bfloat1622float2(wp[j]);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * K) + c);
      const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&xv);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 xf = __bfloat1622float2(xp[j]);
        acc[m] = fmaf(xf.x, wf[j].x, fmaf(xf.y, wf[j].y, acc[m]));
      }
    }
  }
  pdl_trigger();
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float v = acc[m];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) y[static_cast<int64_t>(m) * N + n] = bf(v);
  }
}

// Launch with the PDL attribute when enabled (set_pdl), else a plain launch.
bool g_pdl = false;

template <typename... Params, typename... Args>
int launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t st, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = 0;
  cfg.stream = st;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = g_pdl ? 1 : 0;
  return static_cast<int>(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...));
}

int threads_for(int n) {
  int t = 128;
  while (t < 1024 && t * 8 < n) t *= 2;
  return t;
}

}  // namespace

void set_pdl(bool on) { g_pdl = on; }

int rms_norm(void* h, const void* delta, const void* w, void* out, int64_t rows, int n, float eps, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  auto* hp = static_cast<__nv_bfloat16*>(h);
  const auto* dp = static_cast<const __nv_bfloat16*>(delta);
  const auto* wp = static_cast<const __nv_bfloat16*>(w);
  auto* op = static_cast<__nv_bfloat16*>(out);
  if (delta != nullptr)
    return launch(rms_norm_kernel<true>, dim3(static_cast<unsigned>(rows)), dim3(threads_for(n)), st, hp, dp, wp, op, n, eps);
  else
    return launch(rms_norm_kernel<false>, dim3(static_cast<unsigned>(rows)), dim3(threads_for(n)), st, hp, dp, wp, op, n, eps);
  return static_cast<int>(cudaGetLastError());
}

int silu_mul(const void* gu, void* out, int64_t rows, int inter, void* stream) {
  const int64_t total = rows * inter;
  const unsigned blocks = static_cast<unsigned>((total + 255) / 256);
  return launch(silu_mul_kernel, dim3(blocks), dim3(256), static_cast<cudaStream_t>(stream),
                static_cast<const __nv_bfloat16*>(gu), static_cast<__nv_bfloat16*>(out), rows, inter);
}

int gemv(const void* x, const void* w, void* y, int rows, int N, int K, void* stream) {
  const auto st = static_cast<cudaStream_t>(stream);
  const auto* xp = static_cast<const __nv_bfloat16*>(x);
  const auto* wp = static_cast<const __nv_bfloat16*>(w);
  auto* yp = static_cast<__nv_bfloat16*>(y);
  const unsigned blocks = static_cast<unsigned>((N + 7) / 8);
  switch (rows) {
    case 1: return launch(gemv_kernel<1>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    case 2: return launch(gemv_kernel<2>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    case 3: return launch(gemv_kernel<3>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    case 4: return launch(gemv_kernel<4>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    case 5: return launch(gemv_kernel<5>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    case 6: return launch(gemv_kernel<6>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    case 7: return launch(gemv_kernel<7>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    case 8: return launch(gemv_kernel<8>, dim3(blocks), dim3(256), st, xp, wp, yp, N, K);
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

int rope_qkv(const RopeParams& p, void* stream) {
  const dim3 grid(static_cast<unsigned>(p.B * p.L), static_cast<unsigned>(p.H + 2 * p.Hkv));
  return launch(rope_qkv_kernel, grid, dim3(p.D / 2), static_cast<cudaStream_t>(stream), p);
}

}  // namespace cuda_fused
}  // namespace flexgen
