// The greedy pick of max-of-probabilities streams (max, weighted_max) on the device: combine()'s
// MaxProb rule, log(max over the stream's rows of w x softmax(row)), then the largest (lowest id on
// ties). Each row's max and softmax sum come from one CTA of a fixed size, summed in a fixed order
// (thread t takes ids t, t + 1024, ... in order, then a fixed tree), and each stream's chunk of ids
// from its own CTA: so a stream's pick depends on its rows' logits alone, never on the other rows
// or streams of the call.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernel_module.cuh"
#include "max_prob_pick_params.h"

namespace flexgen {
namespace cuda_pick {

namespace {

__global__ void __launch_bounds__(kRowThreads) row_stats_kernel(const MaxProbParams p) {
  __shared__ double sh[kRowThreads];
  __shared__ float shm[kRowThreads];
  __shared__ int bad;
  const int t = threadIdx.x;
  const float* x = p.logits + __ldg(p.rows + blockIdx.x) * p.ld;
  if (t == 0) bad = 0;
  float m = -INFINITY;
  bool finite = true;
  for (int64_t v = t; v < p.V; v += kRowThreads) {
    const float a = x[v];
    finite = finite && isfinite(a);
    m = fmaxf(m, a);
  }
  shm[t] = m;
  __syncthreads();
  if (!finite) bad = 1;
  for (int s = kRowThreads / 2; s > 0; s >>= 1) {
    if (t < s) shm[t] = fmaxf(shm[t], shm[t + s]);
    __syncthreads();
  }
  const double mx = static_cast<double>(shm[0]);
  double z = 0.0;
  for (int64_t v = t; v < p.V; v += kRowThreads) z += exp(static_cast<double>(x[v]) - mx);
  sh[t] = z;
  __syncthreads();
  for (int s = kRowThreads / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  if (t == 0) {
    p.row_max[blockIdx.x] = mx;
    p.row_sum[blockIdx.x] = bad ? NAN : sh[0];
  }
}

// (value, id) a is better than b: larger, or equal and a lower id.
__device__ __forceinline__ bool better(float av, int ai, float bv, int bi) { return av > bv || (av == bv && ai < bi); }

__global__ void __launch_bounds__(kPickThreads) max_prob_pick_kernel(const MaxProbParams p) {
  __shared__ float sv[kPickThreads];
  __shared__ int si[kPickThreads];
  __shared__ int anynan;
  const int s = blockIdx.y, t = threadIdx.x;
  const int n = __ldg(p.scount + s);
  const int64_t v0 = static_cast<int64_t>(blockIdx.x) * kPickChunk;
  const int64_t v1 = v0 + kPickChunk < p.V ? v0 + kPickChunk : p.V;
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  bool nan = false;
  for (int64_t v = v0 + t; v < v1; v += kPickThreads) {
    double best = 0.0;  // combine(): the max over rows of w x exp(x - max) / sum, from 0
    for (int i = 0; i < n; ++i) {
      const int r = __ldg(p.srow + s * p.most + i);
      const double mx = p.row_max[r], z = p.row_sum[r];
      nan = nan || isnan(z);
      const double q = __ldg(p.sw + s * p.most + i) * exp(static_cast<double>(__ldg(p.logits + __ldg(p.rows + r) * p.ld + v)) - mx) / z;
      best = best < q ? q : best;  // std::max(best, q)
    }
    const float o = best > 0 ? static_cast<float>(log(best)) : -INFINITY;
    if (better(o, static_cast<int>(v), bv, bi)) bv = o, bi = static_cast<int>(v);
  }
  sv[t] = bv;
  si[t] = bi;
  if (t == 0) anynan = 0;
  __syncthreads();
  if (nan) anynan = 1;
  for (int h = kPickThreads / 2; h > 0; h >>= 1) {
    if (t < h && better(sv[t + h], si[t + h], sv[t], si[t])) sv[t] = sv[t + h], si[t] = si[t + h];
    __syncthreads();
  }
  if (t == 0) {  // a row with a non-finite logit: NaN (the caller's error)
    p.part_val[s * p.chunks + blockIdx.x] = anynan ? NAN : sv[0];
    p.part_id[s * p.chunks + blockIdx.x] = si[0];
  }
}

}  // namespace

int launch_max_prob_pick(const MaxProbParams& p, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  if (p.nrows > 0) row_stats_kernel<<<p.nrows, kRowThreads, 0, st>>>(p);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || p.streams == 0) return static_cast<int>(e);
  max_prob_pick_kernel<<<dim3(p.chunks, p.streams), kPickThreads, 0, st>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda_pick
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(max_prob_pick)
