// Persistent decode-layer kernel (contract: decode_layer_params.h): a batch-1 decode step's
// projections after a layer's attention (o + residual add, RMSNorm + gate|up + SiLU, down +
// residual add, RMSNorm + the next layer's q|k|v + RoPE + cache write) in one launch of one CTA
// an SM.
//
// Why: launched one by one, each projection's CTAs become resident (and start streaming their
// weights) only as the previous kernel's leave, so every launch pays a ramp-up and a tail, and
// the norm kernels between them leave memory idle (an H200 per-CTA timeline:
// bench/decode_cuda/results/h200-2026-12-01j). Here every warp streams the weights of all its
// tiles of all the chain's projections through one ring of shared-memory stages, in the order it
// computes them, so the next projection's first weights are in flight while the CTA waits at the
// grid-wide barrier for the previous projection's last outputs. Measured on an H200 it is slower
// than the separate kernels (its CTAs cannot share an SM with the attention's; docs/cuda.md, "A
// persistent decode-layer kernel"), so it is opt-in (FLEXGEN_CUDA_LAYER_KERNEL=1).
//
// Arithmetic: each output is the one-row mma_linear kernel's (mma_linear_kernel.cu): a warp is
// split p of S (S = mma_linear_k_splits_of(N)) of one 16-column tile, accumulating the
// 64-element groups p, p + S, ... in order through mma.sync m16n8k16 with the row as MMA column
// 0; the S partial sums are added in split order; rounded once; then the same epilogue
// (mma_epilogue.cuh). The norms replay rms_norm_kernel's sum of squares in its order and the
// residual add its rounding. So a row decoded here gets the bits it gets in a batch.
//
// Schedule: a CTA's 16 warps are 16 / S slots of S warps; tile j of projection p goes to CTA
// (j + offset_p) mod G (offset_p: the tiles of the projections before, so the CTAs that had the
// last tiles of one projection get the first of the next), a CTA's tiles to its slots in turn.
// Every SM streams weights of every projection with more than G tiles; a slot without a tile of
// this projection prefetches its next one's. Between projections a CTA adds
// one to its barrier counter (after its outputs are written and fenced) and waits until all G
// CTAs have; the counter only grows (a launch's arrivals are a whole multiple of G), so it
// needs no reset between launches or graph replays.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cp_async.cuh"
#include "decode_layer_params.h"
#include "env_switch.h"
#include "half_math.cuh"
#include "kernel_attribute.cuh"
#include "kernel_module.cuh"
#include "ldmatrix.cuh"
#include "llama_elementwise.cuh"
#include "mma_epilogue.cuh"
#include "pdl.cuh"
#include "step_timeline.cuh"
#include "tile_stages.cuh"

FLEXGEN_TIMELINE_UNIT()

namespace flexgen {
namespace cuda_fused {

// Each chain slot's barrier counter (one set per device; zero at module load).
__device__ unsigned long long g_decode_layer_barrier[kDecodeLayerBarriers];

namespace {

using cuda_async::cp_async16;
using cuda_async::cp_async_commit;
using cuda_async::cp_async_wait;
using cuda_async::ldmatrix_x4;
using cuda_async::smem_u32;
using cuda_half::f;
using cuda_half::Mma;
using cuda_half::to;

constexpr int kWarps = 16, kThreads = kWarps * 32;
// The norm prologue takes rows of at most 1024 chunks of 8 (rms_norm_kernel's one chunk a thread).
constexpr int kNormChunks = 1024;
constexpr int kNormC = kNormChunks / kThreads;

// 16 bytes / one element written by other CTAs of this launch or by earlier kernels: from L2
// (ld.global.cg: L1 is not coherent between SMs), in a volatile asm kept after the waits.
__device__ __forceinline__ uint4 load_l2_16(const void* p) {
  uint4 v;
  asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}
template <typename T>
__device__ __forceinline__ T load_l2(const T* p) {
  unsigned short v;
  asm volatile("ld.global.cg.u16 %0, [%1];\n" : "=h"(v) : "l"(p));
  return *reinterpret_cast<T*>(&v);
}

__device__ __forceinline__ unsigned long long load_acquire(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.gpu.global.u64 %0, [%1];\n" : "=l"(v) : "l"(p) : "memory");
  return v;
}

// Named barrier `id` (1 .. 15) of `threads` threads (whole warps).
__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// This thread's chunks c = threadIdx.x + kThreads j of the norm weight w [K] (zeros past K).
__device__ __forceinline__ void norm_weights(const void* w, int K, uint4 (&wv)[kNormC]) {
#pragma unroll
  for (int j = 0; j < kNormC; ++j) {
    const int c = threadIdx.x + kThreads * j;
    wv[j] = c < K / 8 ? __ldg(static_cast<const uint4*>(w) + c) : make_uint4(0u, 0u, 0u, 0u);
  }
}

// xs (K elements of the residual row, K % 8 == 0, K / 8 <= 1024) replaced in shared memory by
// rms_norm_kernel's output for that row, bit for bit. Chunk c (elements 8 c .. 8 c + 7) is that
// kernel's thread c: its squares summed in order, the chunks of each 32 by warp_sum, those sums
// (zeros past the last) by warp_sum again, as its block_sum does; every warp computes the total
// alike. part: 32 floats of shared memory. Ends with the CTA synchronized.
template <typename T>
__device__ void norm_row_in_shared(unsigned char* xs, int K, const uint4 (&wv)[kNormC], float eps, float* part) {
  const int chunks = K / 8, warps = (chunks + 31) / 32, lane = threadIdx.x & 31;
  uint4* xs16 = reinterpret_cast<uint4*>(xs);
  for (int v = threadIdx.x >> 5; v < warps; v += kWarps) {
    const int c = 32 * v + lane;
    float e[8] = {};
    if (c < chunks) {
      const uint4 raw = xs16[c];
      const T* x = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int k = 0; k < 8; ++k) e[k] = f(x[k]);
    }
    const float ss = cuda_half::warp_sum(cuda_half::sum_squares8(e, 0.f));
    if (lane == 0) part[v] = ss;
  }
  __syncthreads();
  const float r = cuda_half::rms_reciprocal(cuda_half::warp_sum(lane < warps ? part[lane] : 0.f), K, eps);
#pragma unroll
  for (int j = 0; j < kNormC; ++j) {
    const int c = threadIdx.x + kThreads * j;
    if (c >= chunks) break;
    uint4 raw = xs16[c];
    T* x = reinterpret_cast<T*>(&raw);
    const T* wt = reinterpret_cast<const T*>(&wv[j]);
#pragma unroll
    for (int k = 0; k < 8; ++k) x[k] = cuda_half::rms_scaled<T>(f(x[k]), f(wt[k]), r);
    xs16[c] = raw;
  }
  __syncthreads();
}

// Shared memory, all dynamic (the launch allows the device's whole opt-in size): the warps'
// rings, x (the longest K's copy), the split partials, the norm's sums.
__host__ __device__ constexpr int x_bytes(int K) { return (K + 63) / 64 * 64 * 2; }
__host__ __device__ constexpr int smem_bytes(int ST, int max_k) {
  return kWarps * ST * kStageBytes + x_bytes(max_k) + kWarps * 32 * 16 + 32 * 4;
}

// The launch's schedule of projection p (every thread computes the same).
struct Phase {
  int S = 1, tiles = 0, offset = 0;
};

// Where warp `warp` of this CTA works in its slot's m-th tile of phase ph: false if it has none.
// n0: the tile's first column; part: the warp's split; mine: its groups.
struct Work {
  int n0 = 0, part = 0, mine = 0;
};
__device__ __forceinline__ bool task_of(const Phase& ph, int K, int m, int warp, Work& w) {
  const int G = static_cast<int>(gridDim.x), slots = kWarps / ph.S;
  const int j = (static_cast<int>(blockIdx.x) - ph.offset + G) % G + (warp / ph.S + slots * m) * G;
  if (j >= ph.tiles) return false;
  const int groups = (K + 63) / 64;
  w.part = warp % ph.S;
  w.n0 = 16 * j;
  w.mine = w.part < groups ? (groups - w.part + ph.S - 1) / ph.S : 0;
  return true;
}

// A warp's weight loads, in the order the warp computes: (phase, task, group), skipping tasks in
// which it has no group. Each issue() fills the next ring slot (stage index `issued` % ST).
template <typename T, int ST>
struct Producer {
  const DecodeLayerChain* c;
  const Phase* phases;
  int warp, lane, p = 0, m = 0, i = 0;
  Work w;
  uint32_t ring;
  uint64_t policy;
  int issued = 0;
  const T* src[4];

  // From (p, m), the first task with a group of this warp's.
  __device__ __forceinline__ void seek() {
    while (p < c->count) {
      const DecodeLayerProjection& pr = c->proj[p];
      if (!task_of(phases[p], pr.K, m, warp, w)) {
        ++p;
        m = 0;
        continue;
      }
      if (w.mine > 0) {
        // Lane l copies units q = l + 32 u: weight row q / 8 of the tile (columns past N read
        // column N - 1, whose results are not written), 16-byte unit q % 8.
        const T* wt = static_cast<const T*>(pr.w);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          const int q = lane + 32 * u;
          src[u] = wt + static_cast<int64_t>(weight_row(pr.ep, min(w.n0 + (q >> 3), pr.N - 1), pr.N)) * pr.K +
                   8 * (q & 7);
        }
        return;
      }
      ++m;
    }
  }

  __device__ __forceinline__ void issue() {
    if (p < c->count) {
      const int K = c->proj[p].K, k0 = 64 * (w.part + phases[p].S * i);
      const uint32_t dst = ring + (issued % ST) * kStageBytes;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int q = lane + 32 * u;
        cp_async16(dst + unit_offset(q >> 3, q & 7), src[u] + k0, k0 + 8 * (q & 7) < K, policy);
      }
      if (++i == w.mine) {
        i = 0;
        ++m;
        seek();
      }
    }
    ++issued;
  }
};

template <typename T, int ST>
__global__ void __launch_bounds__(kThreads, 1) decode_layer_kernel(const __grid_constant__ DecodeLayerChain c,
                                                                    int ahead) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int G = static_cast<int>(gridDim.x);

  int max_k = 0;
  Phase phases[kDecodeLayerMaxProjections];
  for (int p = 0, offset = 0; p < c.count; ++p) {
    const int N = c.proj[p].N;
    phases[p].S = mma_linear_k_splits_of(N);
    phases[p].tiles = (N + 15) / 16;
    phases[p].offset = offset;
    offset = (offset + phases[p].tiles) % G;
    max_k = max(max_k, c.proj[p].K);
  }
  unsigned char* xs = smem + kWarps * ST * kStageBytes;
  float4* partial = reinterpret_cast<float4*>(xs + x_bytes(max_k));  // [kWarps][32]
  float* norm_part = reinterpret_cast<float*>(partial + kWarps * 32);
  const uint32_t* xs32 = reinterpret_cast<const uint32_t*>(xs);

  Producer<T, ST> pro;
  pro.c = &c;
  pro.phases = phases;
  pro.warp = warp;
  pro.lane = lane;
  pro.ring = smem_u32(smem + warp * ST * kStageBytes);
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pro.policy));
  pro.seek();

  // The first `ahead` stages are in flight before the wait for the previous kernel (the weights
  // do not depend on it; more of them at once slow the attention still running), the others
  // right after it.
  for (int i = 0; i < ST - 1 && i < ahead; ++i) {
    pro.issue();
    cp_async_commit();
  }

  unsigned long long* counter = g_decode_layer_barrier + c.barrier;
  unsigned long long target = 0;  // thread 0: the count that ends the current barrier
  for (int p = 0; p < c.count; ++p) {
    const DecodeLayerProjection& pr = c.proj[p];
    const Phase ph = phases[p];
    const int K = pr.K, N = pr.N;
    uint4 wv[kNormC];
    if (pr.norm_weight != nullptr) norm_weights(pr.norm_weight, K, wv);  // in flight during the wait
    FLEXGEN_TIMELINE_NOW(timeline_start);
    if (p == 0) {
      cuda_pdl::pdl_wait();
    } else {
      if (threadIdx.x == 0)
        while (load_acquire(counter) < target) {
        }
      __syncthreads();
    }
    // The next kernel (the next layer's attention) may launch once the last projection starts.
    if (p == c.count - 1) cuda_pdl::pdl_trigger();
    // x: the input row, or the residual row to be normed, zeros up to whole 64-element groups.
    {
      const T* src = static_cast<const T*>(pr.norm_weight != nullptr ? c.h : pr.x);
      uint4* xs16 = reinterpret_cast<uint4*>(xs);
      for (int q = threadIdx.x; q < x_bytes(K) / 16; q += kThreads)
        xs16[q] = 8 * q < K ? load_l2_16(src + 8 * q) : make_uint4(0u, 0u, 0u, 0u);
      if (p == 0)  // the other first stages, requested after x (which then does not wait behind them)
        for (int i = ahead; i < ST - 1; ++i) {
          pro.issue();
          cp_async_commit();
        }
      __syncthreads();
      if (pr.norm_weight != nullptr) norm_row_in_shared<T>(xs, K, wv, c.eps, norm_part);
    }
    FLEXGEN_TIMELINE_NOW(timeline_waited);
    Work w;
    for (int m = 0; task_of(ph, K, m, warp, w); ++m) {
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      for (int i = 0; i < w.mine; ++i) {
        cp_async_wait<ST - 2>();
        __syncwarp();
        const uint32_t stage = pro.ring + ((pro.issued - (ST - 1)) % ST) * kStageBytes;
        pro.issue();
        cp_async_commit();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {  // k16 step kk: units 2 kk (k .. k + 7), 2 kk + 1
          uint32_t a[4];
          ldmatrix_x4(a, stage + unit_offset((lane & 7) + ((lane >> 3) & 1) * 8, 2 * kk + (lane >> 4)));
          const int k = 64 * (w.part + ph.S * i) + 16 * kk + 2 * t;
          const uint32_t v0 = xs32[k >> 1], v1 = xs32[(k + 8) >> 1];
          Mma<T>::run(acc, a, g == 0 ? v0 : 0u, g == 0 ? v1 : 0u);
        }
      }
      if (ph.S > 1) {  // the tile's S warps are consecutive: split 0 adds the others' sums in order
        const int id = 1 + warp / ph.S, threads = 32 * ph.S;
        if (w.part != 0) partial[warp * 32 + lane] = make_float4(acc[0], acc[1], acc[2], acc[3]);
        named_sync(id, threads);
        if (w.part == 0)
          for (int q = 1; q < ph.S; ++q) {
            const float4 v = partial[(warp + q) * 32 + lane];
            acc[0] += v.x;
            acc[1] += v.y;
            acc[2] += v.z;
            acc[3] += v.w;
          }
        named_sync(id, threads);
      }
      // Row 0's outputs: lanes t == 0, accumulators 0 (column n0 + g) and 2 (n0 + g + 8).
      const int na = w.n0 + g;
      if (w.part != 0 || t != 0 || na >= N) continue;
      if (pr.ep.kind != MmaEpilogue::Kind::Plain) {
        pair_epilogue<T>(pr.ep, static_cast<T*>(pr.y), 0, na, N, acc[0], acc[2]);
      } else if (pr.add_to_residual) {  // add_rms_norm's add: h = T(h + T(y))
        T* h = static_cast<T*>(c.h);
        h[na] = to<T>(f(load_l2(h + na)) + f(to<T>(acc[0])));
        if (na + 8 < N) h[na + 8] = to<T>(f(load_l2(h + na + 8)) + f(to<T>(acc[2])));
      } else {
        T* y = static_cast<T*>(pr.y);
        y[na] = to<T>(acc[0]);
        if (na + 8 < N) y[na + 8] = to<T>(acc[2]);
      }
    }
    __syncthreads();  // this CTA's outputs of p are written
    FLEXGEN_TIMELINE_STAMP(::flexgen::cuda_timeline::kLinear + (pr.add_to_residual ? 3 : static_cast<int>(pr.ep.kind)),
                           pr.w, N, timeline_start, timeline_waited);
    if (p + 1 < c.count) {  // arrive at the barrier
      if (threadIdx.x == 0) {
        __threadfence();
        const unsigned long long ticket = atomicAdd(counter, 1ull);
        target = (ticket / G + 1) * G;
      }
    }
  }
  cp_async_wait<0>();
}

// Stages of a warp's ring: FLEXGEN_CUDA_LAYER_STAGES=N (3-6; A/B runs), default 4 (an H200, batch
// 1, one call: 1B step 0.971 / 0.945 / 0.958 ms at 6 / 4 / 5 stages, 3B 2.158 / 2.103 / 2.152; deeper
// rings put more weight loads in front of the loads each projection waits for). Fewer where the
// ring and x do not fit. Read once.
int ring_stages() {
  static const int n = [] {
    const std::string v = cuda_env::env_switch("FLEXGEN_CUDA_LAYER_STAGES", {"3", "4", "5", "6"});
    return v.empty() ? 4 : v[0] - '0';
  }();
  return n;
}

// Weight stages a warp requests before the wait for the previous kernel:
// FLEXGEN_CUDA_LAYER_AHEAD=N (0-5; A/B runs, no value depends on it), default 2. Read once.
int prefetch_ahead() {
  static const int n = [] {
    const std::string v = cuda_env::env_switch("FLEXGEN_CUDA_LAYER_AHEAD", {"0", "1", "2", "3", "4", "5"});
    return v.empty() ? 2 : v[0] - '0';
  }();
  return n;
}

template <typename T, int ST>
int launch(const DecodeLayerChain& c, int max_k, cudaStream_t st, bool pdl) {
  constexpr auto kernel = decode_layer_kernel<T, ST>;
  const int bytes = smem_bytes(ST, max_k);
  if (const cudaError_t e = cuda_launch::allow_dynamic_smem<kernel>(
          tile_stages::device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>());
      e != cudaSuccess)
    return static_cast<int>(e);
  // Every CTA must be resident at once (they wait for each other): one an SM.
  int per_sm = 0;
  if (const cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, bytes);
      e != cudaSuccess)
    return static_cast<int>(e);
  if (per_sm < 1) return static_cast<int>(cudaErrorInvalidConfiguration);
  return static_cast<int>(cuda_pdl::launch(kernel, dim3(static_cast<unsigned>(tile_stages::sm_count())),
                                           dim3(kThreads), bytes, st, pdl, c, prefetch_ahead()));
}

}  // namespace

void decode_layer_read_switches() {
  ring_stages();
  prefetch_ahead();
}

int decode_layer_chain(DType t, const DecodeLayerChain& c, void* stream, bool pdl) {
  if (c.count < 1 || c.count > kDecodeLayerMaxProjections || c.h == nullptr || c.barrier < 0 ||
      c.barrier >= kDecodeLayerBarriers)
    return static_cast<int>(cudaErrorInvalidValue);
  int max_k = 0;
  for (int p = 0; p < c.count; ++p) {
    const DecodeLayerProjection& pr = c.proj[p];
    const MmaEpilogue& ep = pr.ep;
    if (pr.w == nullptr || pr.N <= 0 || pr.K <= 0 || pr.K % 8 != 0 || pr.K > kDecodeLayerMaxK ||
        (pr.norm_weight == nullptr && pr.x == nullptr) || (pr.norm_weight != nullptr && pr.K > 8 * kNormChunks) ||
        ep.bias != nullptr || (pr.add_to_residual && ep.kind != MmaEpilogue::Kind::Plain) ||
        (ep.kind != MmaEpilogue::Kind::RopeCache && !pr.add_to_residual && pr.y == nullptr) ||
        !mma_epilogue_fits(ep, pr.N))
      return static_cast<int>(cudaErrorInvalidValue);
    max_k = pr.K > max_k ? pr.K : max_k;
  }
  const auto st = static_cast<cudaStream_t>(stream);
  // The deepest ring (6 stages a warp at most) that fits beside x.
  const int limit = tile_stages::device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>();
  int ST = ring_stages();
  while (ST > 3 && smem_bytes(ST, max_k) > limit) --ST;
  if (t == DType::BF16) {
    if (ST == 6) return launch<__nv_bfloat16, 6>(c, max_k, st, pdl);
    if (ST == 5) return launch<__nv_bfloat16, 5>(c, max_k, st, pdl);
    if (ST == 4) return launch<__nv_bfloat16, 4>(c, max_k, st, pdl);
    return launch<__nv_bfloat16, 3>(c, max_k, st, pdl);
  }
  if (ST == 6) return launch<__half, 6>(c, max_k, st, pdl);
  if (ST == 5) return launch<__half, 5>(c, max_k, st, pdl);
  if (ST == 4) return launch<__half, 4>(c, max_k, st, pdl);
  return launch<__half, 3>(c, max_k, st, pdl);
}

}  // namespace cuda_fused
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(decode_layer)
