// Block-sparse attention, CUDA (FlashAttention-2 style). Contract: include/flexgen/block_sparse_attention.h
// and block_sparse_attention_cuda.h.
//
// One CTA per (query tile, head, batch row). A query tile holds up to BM consecutive absolute
// positions inside ONE mask query block (tiles are aligned to the mask block, as the CPU kernel
// splits its tiles), so the CTA walks exactly the key blocks listed for that block: full blocks
// first (no per-element work), then partial blocks (group ids + visibility + causality per
// element). Each listed block, clipped to the keys present in k/v (and, for causal partial
// blocks, to keys <= the tile's last query position), is consumed in chunks of BN keys.
// K/V chunks go through shared memory with cp.async, two stages (load chunk j+1 while computing
// chunk j); Q stays in shared memory (XOR-swizzled 16-byte columns, conflict-free ldmatrix).
// Each warp owns 16*MT query rows: S = Q K^T and O += P V by mma.sync m16n8k16 (bf16/fp16 in,
// fp32 accumulate), online softmax in base 2 in registers, P converted to 16-bit A fragments in
// registers (no shared-memory round trip). Rows with nothing allowed (and rows past the mask's
// q_len) get zeros and lse = -inf. GQA: head h reads KV head h / g, nothing copied.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "bsa_launch.cuh"
#include "bsa_params.h"
#include "bsa_tile_math.cuh"
#include "cp_async.cuh"
#include "half_math.cuh"
#include "kernel_attribute.cuh"
#include "kernel_module.cuh"
#include "ldmatrix.cuh"
#include "pdl.cuh"
#include "step_timeline.cuh"

FLEXGEN_TIMELINE_UNIT()

namespace flexgen {
namespace cuda_bsa {

namespace {

using cuda_async::cp_async16;
using cuda_async::cp_async_commit;
using cuda_async::cp_async_wait;
using cuda_async::ldmatrix_x4;
using cuda_async::ldmatrix_x4_trans;
using cuda_async::smem_u32;
using cuda_half::Mma;

using tile_math::Chunk;
using tile_math::ChunkCursor;
using tile_math::fast_exp2;
using tile_math::kNegInf;
using tile_math::next_chunk;
using tile_math::row_mask;

// Element offset of (row, col) in a [rows][D] 16-bit tile whose 16-byte columns are XOR-swizzled
// by (row & 7); col is a multiple of 8.
template <int D>
__device__ __forceinline__ int swz(int row, int col) {
  return row * D + ((((col >> 3) ^ (row & 7))) << 3);
}

template <typename T, int D, int NW, int MT, int BN>
struct Cfg {
  static constexpr int kThreads = NW * 32;
  static constexpr int BM = NW * 16 * MT;
  static constexpr int KCH = D / 8;  // 16-byte chunks per row
  static constexpr size_t kSmem =
      sizeof(T) * (static_cast<size_t>(BM) * D + 4 * static_cast<size_t>(BN) * D) + 2 * BN * sizeof(int);
};

template <typename T, int D, int NW, int MT, int BN, int MINB>
__global__ void __launch_bounds__(NW * 32, MINB) bsa_fwd_kernel(const __grid_constant__ Params p) {
  using C = Cfg<T, D, NW, MT, BN>;
  constexpr int BM = C::BM, KCH = C::KCH, NT = C::kThreads;
  static_assert(D % 64 == 0, "head_dim must be a multiple of 64");
  static_assert(BN % 16 == 0, "BN must be a multiple of 16");

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + BM * D;       // 2 stages of [BN][D]
  T* sV = sK + 2 * BN * D;   // 2 stages of [BN][D]
  int* sG = reinterpret_cast<int*>(sV + 2 * BN * D);  // 2 stages of [BN] key group ids

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int h = blockIdx.y;
  const int bl = blockIdx.z;
  const int b = p.b0 + bl;
  const MaskDesc& M = row_mask(p, bl);

  // Tile -> (mask query block, sub-tile); heavy (late) blocks first.
  tile_math::QueryTile qt;
  if (!tile_math::query_tile<BM>(p, M, gridDim.x - 1 - blockIdx.x, qt)) return;
  const int qb = qt.qb, nrows = qt.nrows, nvalid = qt.nvalid, r0 = qt.r0, qmax = qt.qmax;
  const int nf = qt.nf, np = qt.np, klo = qt.klo, khi = qt.khi;
  const int kvh = h / p.g;

  const T* qbase = static_cast<const T*>(p.q) + b * p.qs0 + h * p.qs1 + r0 * p.qs2;
  const T* kbase = static_cast<const T*>(p.k) + b * p.ks0 + kvh * p.ks1;
  const T* vbase = static_cast<const T*>(p.v) + b * p.vs0 + kvh * p.vs1;

  // Q tile -> shared (zero rows past the tile).
  for (int idx = tid; idx < BM * KCH; idx += NT) {
    const int row = idx / KCH, c = idx % KCH;
    const bool ok = row < nrows;
    const T* src = ok ? qbase + row * p.qs2 + c * 8 : qbase;
    cp_async16(smem_u32(sQ + swz<D>(row, c * 8)), src, ok);
  }
  cp_async_commit();

  // K/V chunk loads: thread -> fixed 16-byte column lc and rows ldrow + i * RPP, so the swizzle
  // ((row & 7) is the same for all its rows) and the addresses are computed once.
  constexpr int RPP = NT / KCH;
  constexpr int PASSES = BN / RPP;
  static_assert(NT % KCH == 0 && RPP % 8 == 0 && BN % RPP == 0, "load mapping");
  const int ldrow = tid / KCH, lc = tid % KCH;
  const uint32_t sK_thr = smem_u32(sK) + static_cast<uint32_t>(swz<D>(ldrow, lc * 8)) * 2u;
  const uint32_t sV_thr = smem_u32(sV) + static_cast<uint32_t>(swz<D>(ldrow, lc * 8)) * 2u;
  const T* kthr = kbase + lc * 8;
  const T* vthr = vbase + lc * 8;
  const int64_t ks2 = p.ks2, vs2 = p.vs2;
  const int kofs = M.k_offset;
  // With at most 32 groups, a query row's visibility row is a bit mask and a key column's group a
  // bit, so the partial-block check is one AND (else: a lookup in the visibility matrix).
  const bool small_groups = M.num_groups <= 32;
  const int32_t* gid = M.gid;
  auto load_chunk = [&](const Chunk& ch, int stage) {
    const int kr = ch.start - kofs + ldrow;
    const T* ksrc = kthr + kr * ks2;
    const T* vsrc = vthr + kr * vs2;
    const uint32_t so = static_cast<uint32_t>(stage * BN * D * 2);
#pragma unroll
    for (int i = 0; i < PASSES; ++i) {
      const bool ok = ldrow + i * RPP < ch.count;
      cp_async16(sK_thr + so + i * RPP * D * 2, ok ? ksrc + i * RPP * ks2 : kbase, ok);
      cp_async16(sV_thr + so + i * RPP * D * 2, ok ? vsrc + i * RPP * vs2 : vbase, ok);
    }
    if (ch.partial) {
      for (int t = tid; t < BN; t += NT) {
        const int g = t < ch.count ? __ldg(gid + ch.start + t) : 0;
        sG[stage * BN + t] = small_groups ? static_cast<int>(1u << g) : g;
      }
    }
  };

  const int wrow0 = warp * 16 * MT;  // this warp's first row in the tile
  tile_math::RowMask rm[MT];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) rm[mt] = tile_math::row_mask_of(M, qt, wrow0 + mt * 16, lane, small_groups);

  float o[MT][D / 8][4];
  float mrow[MT][2], lrow[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.f;
    mrow[mt][0] = mrow[mt][1] = kNegInf;
    lrow[mt][0] = lrow[mt][1] = 0.f;
  }

  ChunkCursor cur{0, 0, 0, false};
  Chunk ch, nxt;
  bool have = next_chunk<BN>(cur, ch, M, qb, nf, np, klo, khi, qmax);
  if (have) load_chunk(ch, 0);
  cp_async_commit();
  int stage = 0;

  const uint32_t sQa = smem_u32(sQ);
  while (have) {
    const bool have_next = next_chunk<BN>(cur, nxt, M, qb, nf, np, klo, khi, qmax);
    if (have_next) load_chunk(nxt, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    // The iteration is compiled twice: without any mask code (full chunks, the hot path) and with
    // it (partial chunks, clipped chunks). One body with the masking as a branch made the compiler
    // merge S from three paths and spend ~300 register moves per chunk (measured, see NOTES.md).
    auto body = [&](auto masked_tag) {
    constexpr bool kMasked = decltype(masked_tag)::value;
    const uint32_t sKa = smem_u32(sK + stage * BN * D);
    const uint32_t sVa = smem_u32(sV + stage * BN * D);

    // S = Q K^T for this warp's rows.
    float s[MT][BN / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int row = wrow0 + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        const int col = kk * 16 + (lane >> 4) * 8;
        ldmatrix_x4(a[mt], sQa + swz<D>(row, col) * 2);
      }
#pragma unroll
      for (int nn = 0; nn < BN / 16; ++nn) {
        uint32_t bf[4];
        const int row = nn * 16 + (lane & 7) + (lane >> 4) * 8;
        const int col = kk * 16 + ((lane >> 3) & 1) * 8;
        ldmatrix_x4(bf, sKa + swz<D>(row, col) * 2);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          Mma<T>::run(s[mt][2 * nn], a[mt], bf[0], bf[1]);
          Mma<T>::run(s[mt][2 * nn + 1], a[mt], bf[2], bf[3]);
        }
      }
    }

    // Mask (raw scores; masked -> -inf). The scale is folded into the exponent below.
    if constexpr (kMasked) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
        tile_math::mask_chunk<BN>(s[mt], rm[mt], ch, sG + stage * BN, M.vis, small_groups, lane);
    }

    // Online softmax in base 2 (rows are shared by the 4 lanes of a quad); m in scaled units.
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) tile_math::online_softmax<BN, D>(s[mt], o[mt], mrow[mt], lrow[mt], p.scale_log2);

    // O += P V.
#pragma unroll
    for (int kc = 0; kc < BN / 16; ++kc) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) tile_math::p_fragment<T, BN>(s[mt], kc, pa[mt]);
#pragma unroll
      for (int dn = 0; dn < D / 16; ++dn) {
        uint32_t bf[4];
        const int row = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        const int col = dn * 16 + (lane >> 4) * 8;
        ldmatrix_x4_trans(bf, sVa + swz<D>(row, col) * 2);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          Mma<T>::run(o[mt][2 * dn], pa[mt], bf[0], bf[1]);
          Mma<T>::run(o[mt][2 * dn + 1], pa[mt], bf[2], bf[3]);
        }
      }
    }
    };
    if (ch.partial || ch.count < BN)
      body(std::true_type{});
    else
      body(std::false_type{});
    __syncthreads();  // this stage is free for the load two chunks ahead
    stage ^= 1;
    ch = nxt;
    have = have_next;
  }
  cp_async_wait<0>();
  __syncthreads();  // Q load done everywhere (also when no chunk was listed)

  // Normalise, write this warp's rows into its own part of sQ, then copy out with 16-byte stores.
  T* obase = static_cast<T*>(p.o) + b * p.os0 + h * p.os1 + r0 * p.os2;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int e2 = 0; e2 < 2; ++e2) {
      const float l = tile_math::row_total(lrow[mt][e2]);
      const int r = wrow0 + mt * 16 + (lane >> 2) + e2 * 8;
      const bool any = l > 0.f && r < nvalid;
      const float inv = any ? 1.f / l : 0.f;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        const int col = j * 8 + (lane & 3) * 2;
        const uint32_t v = Mma<T>::pack(o[mt][j][2 * e2] * inv, o[mt][j][2 * e2 + 1] * inv);
        *reinterpret_cast<uint32_t*>(sQ + swz<D>(r, j * 8) + (col & 7)) = v;
      }
      if (p.lse != nullptr && (lane & 3) == 0 && r < nrows) {
        p.lse[(static_cast<int64_t>(b) * p.H + h) * p.Lq + r0 + r] = tile_math::row_lse(any, mrow[mt][e2], l);
      }
    }
  __syncwarp();
  for (int idx = lane; idx < 16 * MT * KCH; idx += 32) {
    const int row = wrow0 + idx / KCH, c = idx % KCH;
    if (row < nrows)
      *reinterpret_cast<uint4*>(obase + row * p.os2 + c * 8) =
          *reinterpret_cast<const uint4*>(sQ + swz<D>(row, c * 8));
  }
}

template <typename T, int D, int NW, int MT, int BN, int MINB>
int launch_impl(const Params& p, int nb, cudaStream_t stream) {
  using C = Cfg<T, D, NW, MT, BN>;
  return launch_query_tiles<bsa_fwd_kernel<T, D, NW, MT, BN, MINB>>(p, nb, C::BM, C::kThreads, static_cast<int>(C::kSmem),
                                                                     stream);
}

template <typename T, int D>
int launch_dtype_dim(const Params& p, int variant, int nb, cudaStream_t stream) {
  switch (variant) {
    case 1:
      return launch_impl<T, D, 8, 1, 64, 1>(p, nb, stream);
    case 2:
      return launch_impl<T, D, 4, 1, 64, 2>(p, nb, stream);
    case 3:
      return launch_impl<T, D, 4, 1, 32, 3>(p, nb, stream);
    case 4:
      return launch_impl<T, D, 8, 1, 32, 2>(p, nb, stream);
    case 5:
      return launch_impl<T, D, 4, 2, 32, 1>(p, nb, stream);
    default:
      return launch_impl<T, D, 4, 2, 64, 1>(p, nb, stream);
  }
}

// ---------------------------------------------------------------------------------------------
// Decode path (Lq = 1): split-K over the listed key blocks. CTA = (split, KV head, batch row),
// 4 warps; the g query heads of the KV head (at most 8) are handled together so K/V are read once,
// by tensor-core MMAs (below). Each split writes a partial (m, l, o) to the workspace; they are merged in split order by bsa_decode_combine
// or, launched as clusters (launches of few rows on sm_90), by the CTAs of the row's cluster.
constexpr int kDecodeWarps = 4;
constexpr int kDecodeMaxG = 8;
constexpr int kDecodePrefetchRows = 8;  // launches of at most this many rows prefetch K/V before waiting
constexpr int kDecodeClusterRows = 8;   // launches of at most this many rows merge in clusters

// The key blocks listed for the row's query (full ones, then partial ones): the split-K ranges are
// cut from this count and the row's split count alone.
__device__ __forceinline__ int decode_listed_blocks(const MaskDesc& M) {
  const int qpos = M.q_offset, qb = qpos / M.block_size;
  if (qpos >= M.q_len || qb >= M.num_q_blocks) return 0;
  return __ldg(M.full_off + qb + 1) - __ldg(M.full_off + qb) + __ldg(M.part_off + qb + 1) - __ldg(M.part_off + qb);
}

// Split `split` of `splits` takes the listed blocks [n split / splits, n (split + 1) / splits); an
// empty range (a short row: fewer listed blocks than splits) computes and writes nothing.
__device__ __forceinline__ int decode_split_begin(int n, int split, int splits) {
  return static_cast<int>(static_cast<int64_t>(n) * split / splits);
}

// Keys [ks, ke) of the e-th listed key block of query block qb for the query at qpos (nf full
// blocks are listed first, then the partial ones with their column ranges), clipped to the keys
// present [klo, khi) and, for causal partial blocks, to keys <= qpos.
__device__ __forceinline__ void decode_key_range(const MaskDesc& M, int e, int nf, int qb, int qpos, int klo, int khi,
                                                 int& ks, int& ke) {
  const bool partial = e >= nf;
  const int kb = partial ? __ldg(M.part_idx + __ldg(M.part_off + qb) + (e - nf))
                         : __ldg(M.full_idx + __ldg(M.full_off + qb) + e);
  ks = kb * M.block_size;
  ke = ks + M.block_size;
  if (partial) {
    const int2 r = __ldg(reinterpret_cast<const int2*>(M.part_cols) + __ldg(M.part_off + qb) + (e - nf));
    ke = ks + r.y;
    ks += r.x;
    if (M.causal) ke = min(ke, qpos + 1);
  }
  ks = max(ks, klo);
  ke = min(ke, khi);
}

// Merges the ns split partials of one (row, head) at output element c: src points at slot 0's
// [o (D floats), m, l], slots D + 2 floats apart, in split order. Sets the merged max m0 and sum l0
// and returns the merged (unnormalised) output; every thread that merges computes the same m0 and
// l0 in the same order. Used by bsa_decode_combine and by the decode kernel's cluster and last-split
// merges, so they give the same bits. Reads through L2 (__ldcg): other CTAs of the same launch may
// have written the partials.
template <int D>
__device__ __forceinline__ float merge_splits(const float* src, int ns, int c, float& m0, float& l0) {
  constexpr int kPre = 16;  // partials held in registers (all loads issued at once); more are re-read
  float pm[kPre], pl[kPre], po[kPre];
#pragma unroll
  for (int s = 0; s < kPre; ++s) {
    pm[s] = s < ns ? __ldcg(src + s * (D + 2) + D) : kNegInf;
    pl[s] = s < ns ? __ldcg(src + s * (D + 2) + D + 1) : 0.f;
    po[s] = s < ns ? __ldcg(src + s * (D + 2) + c) : 0.f;
  }
  m0 = kNegInf;
#pragma unroll
  for (int s = 0; s < kPre; ++s) m0 = fmaxf(m0, pm[s]);
  for (int s = kPre; s < ns; ++s) m0 = fmaxf(m0, __ldcg(src + s * (D + 2) + D));
  const float mu = m0 == kNegInf ? 0.f : m0;
  l0 = 0.f;
  float oo = 0.f;
#pragma unroll
  for (int s = 0; s < kPre; ++s) {
    if (s < ns) {
      const float w = fast_exp2(pm[s] - mu);  // split weight
      l0 += pl[s] * w;
      oo += po[s] * w;
    }
  }
  for (int s = kPre; s < ns; ++s) {
    const float w = fast_exp2(__ldcg(src + s * (D + 2) + D) - mu);
    l0 += __ldcg(src + s * (D + 2) + D + 1) * w;
    oo += __ldcg(src + s * (D + 2) + c) * w;
  }
  return oo;
}

// Writes head h's merged output element c of batch row b (and its lse from element 0).
template <typename T>
__device__ __forceinline__ void store_merged(const Params& p, const MaskDesc& M, int b, int h, int c, float oo,
                                             float m0, float l0) {
  const bool any = l0 > 0.f && M.q_offset < M.q_len;
  T* out = static_cast<T*>(p.o) + b * p.os0 + h * p.os1;
  out[c] = cuda_half::to<T>(any ? oo / l0 : 0.f);
  if (p.lse != nullptr && c == 0)
    p.lse[static_cast<int64_t>(b) * p.H + h] = any ? (m0 + __log2f(l0)) * 0.6931471805599453f : kNegInf;
}

// Thread-block-cluster barrier (sm_90): the arrive releases this thread's writes (to global memory
// too) to the threads of the cluster that then wait (acquire). Every thread of the cluster arrives
// (CTAs with nothing to do arrive, then return).
__device__ __forceinline__ void cluster_arrive() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire;\n" ::: "memory");
#endif
}

// The decode kernel computes a split with tensor cores (mma.sync m16n8k16, 16-bit operands, fp32
// accumulation), one key group of 32 keys per warp at a time:
//   S = Q K^T: A = the KV head's query heads (rows 0 .. g - 1 of 16; lane l holds head l / 4),
//     B = the group's K rows (n8 tiles of 8 keys), k = head_dim. The k order is a relabelling of
//     head_dim (the same for both operands): within 32 dims, k16 step 2i takes dims 8t + 0..3 of
//     lane quad position t, step 2i + 1 dims 8t + 4..7, so each lane's 16-byte loads of q and of
//     its key's row are A and B fragments as they are.
//   O^T += V^T P^T: A = V^T (head_dim x keys, ldmatrix.trans from the swizzled V rows in shared
//     memory), B = P^T (keys x heads), which the S fragments hold as they are (P rounded to T,
//     as in the prefill kernel), k = the group's keys; O^T's columns are the heads.
// Online softmax per head over the group (a quad's 8 scores a lane, two shuffles), in base 2.
// Each output's arithmetic depends on its row's keys and the split count only: nothing about
// the other rows of the launch.
//
// MERGE (sm_90, launched as clusters of gridDim.x CTAs, one cluster per (KV head, row)): the CTAs
// merge their partials themselves after a cluster barrier, and no combine kernel runs. prefetch:
// pull the first split's K/V rows into L2 before waiting for the previous kernel (worth it when
// few rows run: with many, the extra requests cost more than the latency they hide).
//
// Launches of many rows (no MERGE) ask for 3 CTAs an SM (168 registers, a few bytes spilled, instead
// of 240 and 2 CTAs): each CTA computes one 128-key block and waits on its loads, so resident CTAs
// are what hides the latency (an H200, 3B, 160 rows: attention 178 -> 164 us a layer in
// bench_decode_cuda; 4 CTAs spilled more and were slower). The same arithmetic either way.
template <typename T, int D, bool MERGE>
__global__ void __launch_bounds__(kDecodeWarps * 32, MERGE ? 1 : 3)
    bsa_decode_kernel(const __grid_constant__ Params p, int splits, float* ws, bool prefetch) {
  constexpr int G = kDecodeMaxG;  // heads a CTA can hold: the n8 columns of O^T
  constexpr int KP = D / 32;      // 16-byte pieces of q and of a key row a lane holds (k16 step pairs)
  constexpr int MT = D / 16;      // m16 tiles of head_dim in O^T
  __shared__ float sm[kDecodeWarps][G], sl[kDecodeWarps][G];
  // Per warp: the V rows of its current 32 keys (cp.async, in flight with the K loads and the
  // scores; 16-byte columns XOR-swizzled by row for conflict-free ldmatrix); reused for the final
  // merge of the warps.
  constexpr size_t kStage = sizeof(T) * kDecodeWarps * 32 * D;
  constexpr size_t kMerge = sizeof(float) * kDecodeWarps * G * D;
  __shared__ __align__(16) unsigned char sbuf[kStage > kMerge ? kStage : kMerge];
  float(*so)[G][D] = reinterpret_cast<float(*)[G][D]>(sbuf);
  FLEXGEN_TIMELINE_NOW(timeline_start);

  const int kvh = blockIdx.y, bl = blockIdx.z, b = p.b0 + bl;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int quad = lane >> 2, t4 = lane & 3;  // MMA fragment row (group id) and column pair
  T* sv = reinterpret_cast<T*>(sbuf) + warp * 32 * D;
  const MaskDesc& M = row_mask(p, bl);
  const int g = p.g;
  const int qpos = M.q_offset;  // Lq == 1
  const int klo = M.k_offset, khi = min(M.k_offset + p.Lk, M.kv_len);
  // The row's listed key blocks: from its plan (decode steps from a mask table: one trip to
  // memory) or walked in the mask's lists here. The same integers either way.
  const DecodePlan* plan = p.plan != nullptr ? p.plan + p.b0 + bl : nullptr;
  // The plan's head (n, nf, vrow, open) in one 16-byte load (plans are 16-byte aligned: 144 bytes).
  const int4 ph = plan != nullptr ? __ldg(reinterpret_cast<const int4*>(plan)) : make_int4(-1, 0, 0, 0);
  const bool planned = ph.x >= 0;
  const int qb = planned ? 0 : qpos / M.block_size;
  const int n = planned ? ph.x : decode_listed_blocks(M);
  const int nf = planned ? ph.y : n > 0 ? __ldg(M.full_off + qb + 1) - __ldg(M.full_off + qb) : 0;
  // The query group's row of the visibility matrix; -1 (plans only): it sees every group.
  const int vrow = planned ? ph.z : n > 0 ? __ldg(M.gid + qpos) * M.num_groups : 0;
  // Whether listed block e's keys need per-key visibility reads: partial blocks, but those a plan
  // marks open (bit e of ph.w: every key of [ks, ke) visible).
  auto checked = [&](int e) { return e >= nf && !(planned && ((static_cast<unsigned>(ph.w) >> e) & 1u)); };
  // Keys [ks, ke) of listed block e.
  auto key_range = [&](int e, int& ks, int& ke) {
    if (planned) {
      const int2 r = __ldg(reinterpret_cast<const int2*>(plan->keys) + e);
      ks = max(r.x, klo);
      ke = min(r.y, khi);
    } else {
      decode_key_range(M, e, nf, qb, qpos, klo, khi, ks, ke);
    }
  };
  // Only the row's non-empty splits are computed (an empty one's partial, m = -inf, l = 0, o = 0,
  // would add exact zeros in the combine): min(n, splits) of them, the x-th in split order into
  // workspace slot x, by CTA x mod gridDim.x (the grid is sized for the usual count; a CTA with
  // none returns at once: it neither waits for q nor writes).
  const int live = min(n, splits);
  // With MERGE or counters, CTA 0 also stays when nothing is listed: it writes the row's zeros.
  const bool counted = !MERGE && p.counters != nullptr;
  if (static_cast<int>(blockIdx.x) >= (MERGE || counted ? max(live, 1) : live)) {
    if constexpr (MERGE) cluster_arrive();
    return;
  }
  // Listed blocks [e0, e1) of the x-th non-empty split: split x when every split has blocks (n >=
  // splits), else the one holding listed block x (each split then holds one block or none).
  auto split_range = [&](int x, int& e0, int& e1) {
    if (n <= splits) {
      e0 = x, e1 = x + 1;
    } else {
      e0 = decode_split_begin(n, x, splits), e1 = decode_split_begin(n, x + 1, splits);
    }
  };
  const T* kbase = static_cast<const T*>(p.k) + b * p.ks0 + kvh * p.ks1;
  const T* vbase = static_cast<const T*>(p.v) + b * p.vs0 + kvh * p.vs1;
  // Keys below shared_len come from the shared row (the same bytes as the row's own: the same
  // arithmetic); key row `key` of K and of V, relative to klo.
  const int slen = M.shared_len;
  const T* kshared = static_cast<const T*>(p.k) + static_cast<int64_t>(M.shared_row) * p.ks0 + kvh * p.ks1;
  const T* vshared = static_cast<const T*>(p.v) + static_cast<int64_t>(M.shared_row) * p.vs0 + kvh * p.vs1;
  auto k_at = [&](int key) { return (key + klo < slen ? kshared : kbase) + static_cast<int64_t>(key) * p.ks2; };
  auto v_at = [&](int key) { return (key + klo < slen ? vshared : vbase) + static_cast<int64_t>(key) * p.vs2; };
  // Whether a key of a listed block may be attended (causality and the groups' visibility for the
  // partial blocks not planned open; full and open blocks allow every key present).
  auto visible = [&](bool partial, int kpos, bool in_range) {
    bool ok = in_range;
    if (ok && partial)
      ok = (!M.causal || kpos <= qpos) && (vrow < 0 || __ldg(M.vis + vrow + __ldg(M.gid + kpos)) != 0);
    return ok;
  };

  // Launches of few rows, before waiting (the mask was uploaded before the step; prefetches
  // change no result): the first key group this warp computes, with its lane's visibility, and
  // this CTA's first split's K and V rows pulled into L2 (its first two listed blocks), so the
  // loads after the wait do not start with a trip to DRAM. (With many rows most CTAs start after
  // the previous kernel has ended: the loop below reads the visibility.)
  bool pre_ok = false, pre_found = false;
  if (prefetch && live > 0) {
    int e0, e1;
    split_range(blockIdx.x, e0, e1);
    int gi = 0;
    for (int e = e0; e < min(e1, e0 + 2); ++e) {
      int ks, ke;
      key_range(e, ks, ke);
      constexpr int kLines = D * static_cast<int>(sizeof(T)) / 128;  // 128-byte lines per key row
      for (int i = threadIdx.x; i < (ke - ks) * kLines; i += blockDim.x) {
        const int r = ks + i / kLines - klo, c = (i % kLines) * (128 / sizeof(T));
        cuda_async::prefetch_l2(k_at(r) + c);
        cuda_async::prefetch_l2(v_at(r) + c);
      }
      for (int k0 = ks; !pre_found && k0 < ke; k0 += 32, ++gi) {
        if (gi != warp) continue;
        pre_ok = visible(checked(e), k0 + lane, k0 + lane < ke);
        pre_found = true;
      }
    }
  }

  // Above: the mask only (uploaded before the step). Below: q and the cache, which the previous
  // kernel (RoPE + cache write) wrote.
  cuda_pdl::pdl_wait();
  cuda_pdl::pdl_trigger();  // the combine may launch now (it waits for this kernel's end)
  FLEXGEN_TIMELINE_NOW(timeline_waited);
  // This lane's A fragments of Q: head `quad` (zeros past g), pieces 32 i + 8 t4 of head_dim.
  uint4 qf[KP];
  {
    const T* qp = static_cast<const T*>(p.q) + b * p.qs0 + (kvh * g + quad) * p.qs1 + 8 * t4;
#pragma unroll
    for (int i = 0; i < KP; ++i) qf[i] = quad < g ? *reinterpret_cast<const uint4*>(qp + 32 * i) : make_uint4(0, 0, 0, 0);
  }

  for (int x = blockIdx.x; x < live; x += gridDim.x) {
    int e0, e1;
    split_range(x, e0, e1);

    const float sc = p.scale_log2;
    // Head `quad`'s running max and sum (the quad's four lanes hold the same), and O^T: o[mt] =
    // rows 16 mt + quad (+ 8) of head_dim, columns heads 2 t4, 2 t4 + 1.
    float m = kNegInf, l = 0.f;
    float o[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) o[mt][0] = o[mt][1] = o[mt][2] = o[mt][3] = 0.f;

    // Key groups of 32 over this split's listed blocks, dealt round-robin to the warps.
    int gi = 0;
    for (int e = e0; e < e1; ++e) {
      const bool partial = checked(e);  // (open partial blocks: every key present is visible)
      int ks, ke;
      key_range(e, ks, ke);
      for (int k0 = ks; k0 < ke; k0 += 32, ++gi) {
        if (gi % kDecodeWarps != warp) continue;
        const int nk = min(32, ke - k0);
        // Every load of the group is issued before the first use: the group's V rows into this
        // warp's shared buffer (cp.async; rows past nk zero-filled), K rows into registers (keys
        // past nk read the last key's row; keys the mask hides too: their scores are discarded),
        // and the mask's visibility (lane = key).
        {
          constexpr int kPer = D / 8;  // 16-byte pieces per lane (32 rows x D / 8 pieces / 32 lanes)
#pragma unroll
          for (int i = 0; i < kPer; ++i) {
            const int idx = lane + 32 * i, row = idx / (D / 8), c = idx % (D / 8);
            const T* src = v_at(min(k0 + row, ke - 1) - klo) + c * 8;
            cp_async16(smem_u32(sv + swz<D>(row, c * 8)), src, row < nk);
          }
          cp_async_commit();
        }
        uint4 kf[4][KP];  // n8 tile nt: key k0 + 8 nt + quad, pieces 32 i + 8 t4
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const T* kr = k_at(min(k0 + 8 * nt + quad, ke - 1) - klo) + 8 * t4;
#pragma unroll
          for (int i = 0; i < KP; ++i) kf[nt][i] = *reinterpret_cast<const uint4*>(kr + 32 * i);
        }
        // The warp's first group of the CTA's first split had its visibility read before the wait.
        const bool ok = (pre_found && x == static_cast<int>(blockIdx.x) && gi == warp)
                            ? pre_ok
                            : visible(partial, k0 + lane, k0 + lane < ke);
        const unsigned okm = __ballot_sync(0xffffffffu, ok);  // keys past nk are never ok

        // S: s[nt][c] = head quad, key 8 nt + 2 t4 + c (c < 2; c = 2, 3 are the zero rows 8..15).
        float s[4][4];
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
          for (int i = 0; i < KP; ++i) {
            const uint32_t a0[4] = {qf[i].x, 0u, qf[i].y, 0u}, a1[4] = {qf[i].z, 0u, qf[i].w, 0u};
            Mma<T>::run(s[nt], a0, kf[nt][i].x, kf[nt][i].y);
            Mma<T>::run(s[nt], a1, kf[nt][i].z, kf[nt][i].w);
          }
        }
        // Online softmax of head quad over the group's 32 keys.
        float mx = kNegInf;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int key = 8 * nt + 2 * t4 + c;
            s[nt][c] = (okm >> key) & 1u ? s[nt][c] * sc : kNegInf;
            mx = fmaxf(mx, s[nt][c]);
          }
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mnew = fmaxf(m, mx);
        const float muse = mnew == kNegInf ? 0.f : mnew;
        const float alpha = fast_exp2(m - muse);
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            s[nt][c] = fast_exp2(s[nt][c] - muse);
            sum += s[nt][c];
          }
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        m = mnew;
        l = l * alpha + sum;
        // O^T's columns are heads 2 t4 and 2 t4 + 1: their factors come from those heads' quads.
        const float al0 = __shfl_sync(0xffffffffu, alpha, 8 * t4), al1 = __shfl_sync(0xffffffffu, alpha, 8 * t4 + 4);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          o[mt][0] *= al0;
          o[mt][1] *= al1;
          o[mt][2] *= al0;
          o[mt][3] *= al1;
        }
        // O^T += V^T P^T over the group's keys, 16 at a time (the k steps past nk are all zeros).
        cp_async_wait<0>();
        __syncwarp();
        // Rows of keys the mask hides get zeros: their P is 0, and 0 x a non-finite value in a
        // cache slot the row may not see would not be.
        for (unsigned hidden = ~okm & (nk == 32 ? 0xffffffffu : (1u << nk) - 1u); hidden != 0u; hidden &= hidden - 1u) {
          const int row = __ffs(hidden) - 1;
          if (lane < D / 8) *reinterpret_cast<uint4*>(sv + swz<D>(row, lane * 8)) = make_uint4(0, 0, 0, 0);
        }
        __syncwarp();
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          if (16 * j >= nk) break;
          const uint32_t pb0 = Mma<T>::pack(s[2 * j][0], s[2 * j][1]);
          const uint32_t pb1 = Mma<T>::pack(s[2 * j + 1][0], s[2 * j + 1][1]);
          const int mi = lane >> 3, vr = 16 * j + (mi >> 1) * 8 + (lane & 7);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            uint32_t va[4];
            ldmatrix_x4_trans(va, smem_u32(sv + swz<D>(vr, 16 * mt + (mi & 1) * 8)));
            Mma<T>::run(o[mt], va, pb0, pb1);
          }
        }
        __syncwarp();  // sv is restaged for the next key group
      }
    }
    __syncthreads();  // every warp done with sv before it becomes the merge buffer

    // Merge the warps, write this split's partial result: ws[((b*H + h) * splits + split) * (D + 2)].
    if (t4 == 0 && quad < g) sm[warp][quad] = m, sl[warp][quad] = l;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int h = 2 * t4 + (c & 1), d = 16 * mt + quad + (c >> 1) * 8;
        if (h < g) so[warp][h][d] = o[mt][c];
      }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < g * D; idx += blockDim.x) {
      const int j = idx / D, c = idx % D;
      float mm = kNegInf;
      for (int w = 0; w < kDecodeWarps; ++w) mm = fmaxf(mm, sm[w][j]);
      const float muse = mm == kNegInf ? 0.f : mm;
      float ll = 0.f, oo = 0.f;
      for (int w = 0; w < kDecodeWarps; ++w) {
        const float a = fast_exp2(sm[w][j] - muse);
        ll += sl[w][j] * a;
        oo += so[w][j][c] * a;
      }
      const int h = kvh * g + j;
      float* dst = ws + ((static_cast<int64_t>(b) * p.H + h) * splits + x) * (D + 2);
      dst[c] = oo;
      if (c == 0) dst[D] = mm, dst[D + 1] = ll;
    }
    __syncthreads();  // sm / so are rewritten by the next split of this CTA
  }

  if constexpr (MERGE) {
    // Every partial of this (row, KV head) is written once all the cluster's CTAs have arrived;
    // the live CTAs then share the g x D outputs (the same merge as bsa_decode_combine).
    cluster_arrive();
    cluster_wait();
    const int active = min(max(live, 1), static_cast<int>(gridDim.x));
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < g * D; idx += active * blockDim.x) {
      const int j = idx / D, c = idx % D, h = kvh * g + j;
      float m0, l0;
      const float oo = merge_splits<D>(ws + (static_cast<int64_t>(b) * p.H + h) * splits * (D + 2), live, c, m0, l0);
      store_merged<T>(p, M, b, h, c, oo, m0, l0);
    }
  } else if (counted) {
    // The CTA whose splits arrive last for this (row, KV head) merges every partial (the same
    // merge as bsa_decode_combine, which then does not run); with nothing listed CTA 0 writes the
    // row's zeros. Each CTA's partials are made visible before it counts (the fence of every
    // writer, then one atomic); the merging CTA resets the count for the next launch.
    __shared__ int last_split;
    bool last = live == 0;
    if (live > 0) {
      __threadfence();
      __syncthreads();
      if (threadIdx.x == 0) {
        const int handled = (live - 1 - static_cast<int>(blockIdx.x)) / static_cast<int>(gridDim.x) + 1;
        int* count = p.counters + static_cast<int64_t>(b) * kDecodeCountedKvHeads + kvh;
        last_split = atomicAdd(count, handled) + handled == live;
        if (last_split) *count = 0;
      }
      __syncthreads();
      last = last_split != 0;
      if (last) __threadfence();
    }
    if (last)
      for (int idx = threadIdx.x; idx < g * D; idx += blockDim.x) {
        const int j = idx / D, c = idx % D, h = kvh * g + j;
        float m0, l0;
        const float oo = merge_splits<D>(ws + (static_cast<int64_t>(b) * p.H + h) * splits * (D + 2), live, c, m0, l0);
        store_merged<T>(p, M, b, h, c, oo, m0, l0);
      }
  }
  FLEXGEN_TIMELINE_STAMP(::flexgen::cuda_timeline::kAttention, p.k, p.Lk, timeline_start, timeline_waited);
}

template <typename T, int D>
__global__ void bsa_decode_combine(const __grid_constant__ Params p, int splits, const float* ws) {
  const int h = blockIdx.x, bl = blockIdx.y, b = p.b0 + bl, c = threadIdx.x;
  const MaskDesc& M = row_mask(p, bl);
  // The non-empty splits' partials are at slots 0 .. ns - 1, in split order (bsa_decode_kernel).
  // Their count comes from the mask (uploaded before the step): read before waiting for the
  // decode kernel, so its chain of loads overlaps that kernel's tail.
  const int ns = min(decode_listed_blocks(M), splits);
  cuda_pdl::pdl_wait();
  cuda_pdl::pdl_trigger();  // the next kernel (o_proj's GEMV) may launch and fetch its weights
  float m0, l0;
  const float oo = merge_splits<D>(ws + (static_cast<int64_t>(b) * p.H + h) * splits * (D + 2), ns, c, m0, l0);
  store_merged<T>(p, M, b, h, c, oo, m0, l0);
}

// Launches the decode kernel on `grid`; with `cluster`, as clusters of grid.x CTAs (at most 16:
// sizes above 8 are allowed once per kernel and device).
template <auto Kernel>
cudaError_t launch_decode_kernel(dim3 grid, dim3 block, cudaStream_t stream, bool pdl, bool cluster, const Params& p,
                                 int splits, float* ws, bool prefetch) {
  if (cluster && grid.x > 8) {
    if (const cudaError_t e = cuda_launch::set_once<Kernel, cudaFuncAttributeNonPortableClusterSizeAllowed>(1);
        e != cudaSuccess)
      return e;
  }
  return cuda_pdl::launch_clusters(cluster ? grid.x : 0u, Kernel, grid, block, 0, stream, pdl, p, splits, ws, prefetch);
}

template <typename T, int D, bool MERGE>
int launch_decode_impl(const Params& p, int nb, int splits, float* ws, bool pdl, cudaStream_t stream) {
  // CTAs per (KV head, row): enough for the key blocks of the cache (a row listing more loops).
  const int bs = p.mtab != nullptr ? p.table_block_size : p.masks[0].block_size;
  const int per_row = bs > 0 ? std::max(1, std::min(splits, (p.Lk + bs - 1) / bs)) : splits;
  const dim3 grid(per_row, p.Hkv, nb), block(kDecodeWarps * 32);
  const bool prefetch = nb <= kDecodePrefetchRows;
  const cudaError_t e =
      launch_decode_kernel<bsa_decode_kernel<T, D, MERGE>>(grid, block, stream, pdl, MERGE, p, splits, ws, prefetch);
  if (e != cudaSuccess || MERGE || p.counters != nullptr) return static_cast<int>(e);
  const float* cws = ws;
  return static_cast<int>(
      cuda_pdl::launch(bsa_decode_combine<T, D>, dim3(p.H, nb), dim3(D), 0, stream, pdl, p, splits, cws));
}

// The cluster merge paid for launches of few rows with the CUDA-core kernel (an H200, 3B shape:
// 10.6 -> 9.1 us a layer at one row); with the tensor-core kernel it no longer does (3B 6.80-6.91
// vs 6.81-6.83 us, 1B 6.02-6.08 vs 5.87-5.92: bench/decode_cuda/results/h200-2026-11-30f/merge_ab).
// With many rows the clusters' co-scheduling costs more than the combine launch (106 -> 149 us at
// 160 rows), so those merge through the combine kernel, as do more than 16 CTAs a row (clusters
// hold at most 16; more splits never come with batch invariance). Same bits either way.
template <typename T, int D>
int launch_decode_merge(const Params& p, int nb, int splits, float* ws, bool pdl, bool cluster_merge,
                        cudaStream_t stream) {
  return cluster_merge && splits <= 16 && nb <= kDecodeClusterRows
             ? launch_decode_impl<T, D, true>(p, nb, splits, ws, pdl, stream)
             : launch_decode_impl<T, D, false>(p, nb, splits, ws, pdl, stream);
}

}  // namespace

int variant_block_m(int variant) {
  switch (variant) {
    case 2:
    case 3:
    case 7:
    case 9:
      return 64;
    default:
      return 128;
  }
}

int launch(const Params& p, DType dtype, int head_dim, int variant, int nb, void* stream) {
  if (variant >= kFirstWgmmaVariant) return launch_wgmma(p, dtype, head_dim, variant, nb, stream);
  return with_type_and_dim(dtype, head_dim, [&](auto t, auto d) {
    return launch_dtype_dim<typename decltype(t)::type, decltype(d)::value>(p, variant, nb,
                                                                            static_cast<cudaStream_t>(stream));
  });
}

int decode_max_group() { return kDecodeMaxG; }

int launch_decode(const Params& p, DType dtype, int head_dim, int nb, int splits, float* ws, bool pdl,
                  bool cluster_merge, void* stream) {
  return with_type_and_dim(dtype, head_dim, [&](auto t, auto d) {
    return launch_decode_merge<typename decltype(t)::type, decltype(d)::value>(p, nb, splits, ws, pdl, cluster_merge,
                                                                               static_cast<cudaStream_t>(stream));
  });
}

}  // namespace cuda_bsa
}  // namespace flexgen

FLEXGEN_CUDA_MODULE_ANCHOR(block_sparse_attention)
