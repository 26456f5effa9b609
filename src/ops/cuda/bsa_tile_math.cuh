// The per-row arithmetic of the block-sparse prefill attention, shared by its two kernels (mma.sync:
// block_sparse_attention_kernel.cu; wgmma: block_sparse_attention_wgmma_kernel.cu) so that a query
// row's outputs are the same bits through either: the walk over the listed key blocks in chunks of
// BN keys, the mask of a chunk's scores, the online softmax in base 2 and P as MMA A fragments. The
// functions work on one m16 tile's fragments as mma.sync lays them out (s[j][e]: row g + 8 (e >> 1)
// of the tile, column 8 j + 2 t + (e & 1); g = lane / 4, t = lane % 4), which is also wgmma's
// accumulator layout for a warp's 16 rows.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "bsa_params.h"
#include "half_math.cuh"

namespace flexgen {
namespace cuda_bsa {
namespace tile_math {

constexpr float kNegInf = -INFINITY;

// The mask of launch row bl: from the device table (CUDA-graph decode steps) or the parameters.
__device__ __forceinline__ const MaskDesc& row_mask(const Params& p, int bl) {
  return p.mtab != nullptr ? p.mtab[p.b0 + bl] : p.masks[p.nmasks == 1 ? 0 : bl];
}

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Walks the listed key blocks of one query block in chunks of at most BN keys. The current
// block's clipped key range is cached, so list entries are read once per block, not per chunk.
struct ChunkCursor {
  int i;    // next listed block: [0, nf) full, [nf, nf + np) partial
  int ks;   // next key of the current block
  int be;   // end of the current block's clipped range
  bool partial;
};
struct Chunk {
  int start, count;
  bool partial;
};

template <int BN>
__device__ __forceinline__ bool next_chunk(ChunkCursor& c, Chunk& out, const MaskDesc& M, int qb, int nf,
                                           int np, int klo, int khi, int qmax) {
  while (c.ks >= c.be) {
    if (c.i >= nf + np) return false;
    const bool partial = c.i >= nf;
    const int kb = partial ? __ldg(M.part_idx + __ldg(M.part_off + qb) + (c.i - nf))
                           : __ldg(M.full_idx + __ldg(M.full_off + qb) + c.i);
    int bs = kb * M.block_size, be = bs + M.block_size;
    if (partial) {  // columns of the block that any row of the query block may see (host-computed)
      const int2 r = __ldg(reinterpret_cast<const int2*>(M.part_cols) + __ldg(M.part_off + qb) + (c.i - nf));
      be = bs + r.y;
      bs += r.x;
      if (M.causal) be = min(be, qmax + 1);
    }
    c.ks = max(bs, klo);
    c.be = min(be, khi);
    c.partial = partial;
    ++c.i;
  }
  out.start = c.ks;
  out.count = min(BN, c.be - c.ks);
  out.partial = c.partial;
  c.ks += out.count;
  return true;
}

// A CTA's query tile: up to BM consecutive absolute positions inside ONE mask query block (tiles are
// aligned to the mask's blocks, heavy (late) blocks first), and what it may see.
struct QueryTile {
  int qb;      // mask query block
  int a0, a1;  // absolute positions [a0, a1)
  int nrows;   // a1 - a0
  int nvalid;  // rows inside the mask (the rest get zeros)
  int r0;      // first row relative to the pass
  int qmax;    // last valid position
  int nf, np;  // full and partial key blocks listed for qb
  int klo, khi;  // keys present in k/v
};

// False when tile `tile` (of the row's grid) has no rows.
template <int BM>
__device__ __forceinline__ bool query_tile(const Params& p, const MaskDesc& M, int tile, QueryTile& t) {
  const int subs = (M.block_size + BM - 1) / BM;
  t.qb = M.q_offset / M.block_size + tile / subs;
  const int sub = tile % subs;
  t.a0 = t.qb * M.block_size + sub * BM;
  t.a1 = min(t.a0 + BM, t.qb * M.block_size + M.block_size);
  t.a0 = max(t.a0, M.q_offset);
  t.a1 = min(t.a1, M.q_offset + p.Lq);
  if (t.a0 >= t.a1) return false;
  t.nrows = t.a1 - t.a0;
  t.nvalid = max(0, min(t.a1, M.q_len) - t.a0);
  t.r0 = t.a0 - M.q_offset;
  t.qmax = t.a0 + t.nvalid - 1;
  t.nf = t.np = 0;
  if (t.nvalid > 0 && t.qb < M.num_q_blocks) {
    t.nf = __ldg(M.full_off + t.qb + 1) - __ldg(M.full_off + t.qb);
    t.np = __ldg(M.part_off + t.qb + 1) - __ldg(M.part_off + t.qb);
  }
  t.klo = M.k_offset;
  t.khi = min(M.k_offset + p.Lk, M.kv_len);
  return true;
}

// The mask state of a thread's two rows of an m16 tile (rows r = row0 + g + 8 e2 of the query
// tile): qlim the largest key it may see (causality; -1 outside the mask), vrow its group's row in
// the visibility matrix and, with at most 32 groups, vbits that row as a bit mask.
struct RowMask {
  int qlim[2], vrow[2];
  uint32_t vbits[2];
};

__device__ __forceinline__ RowMask row_mask_of(const MaskDesc& M, const QueryTile& t, int row0, int lane,
                                               bool small_groups) {
  RowMask rm;
#pragma unroll
  for (int e2 = 0; e2 < 2; ++e2) {
    const int r = row0 + (lane >> 2) + e2 * 8;
    const bool ok = r < t.nvalid;
    rm.qlim[e2] = ok ? (M.causal ? t.a0 + r : 0x7fffffff) : -1;
    rm.vrow[e2] = ok ? __ldg(M.gid + t.a0 + r) * M.num_groups : 0;
    uint32_t bits = 0;
    if (small_groups && ok)
      for (int kg = 0; kg < M.num_groups; ++kg) bits |= (__ldg(M.vis + rm.vrow[e2] + kg) != 0 ? 1u : 0u) << kg;
    rm.vbits[e2] = bits;
  }
  return rm;
}

// Raw scores of a chunk that is partial or shorter than BN: keys the row may not see -> -inf. g:
// the chunk's key group ids (bits with small_groups; 0 past count).
template <int BN>
__device__ __forceinline__ void mask_chunk(float (&s)[BN / 8][4], const RowMask& rm, const Chunk& ch, const int* g,
                                           const int32_t* vis, bool small_groups, int lane) {
  if (ch.partial) {
    if (small_groups) {
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int c0 = j * 8 + (lane & 3) * 2;
        const int2 gb = *reinterpret_cast<const int2*>(g + c0);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int e2 = e >> 1;
          const uint32_t kbit = static_cast<uint32_t>((e & 1) ? gb.y : gb.x);
          const bool ok = (rm.vbits[e2] & kbit) != 0 && ch.start + c0 + (e & 1) <= rm.qlim[e2] &&
                          c0 + (e & 1) < ch.count;
          if (!ok) s[j][e] = kNegInf;
        }
      }
    } else {
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int e2 = e >> 1;
          const int col = j * 8 + (lane & 3) * 2 + (e & 1);
          bool ok = col < ch.count && ch.start + col <= rm.qlim[e2];
          if (ok) ok = __ldg(vis + rm.vrow[e2] + g[col]) != 0;
          if (!ok) s[j][e] = kNegInf;
        }
    }
  } else if (ch.count < BN) {
#pragma unroll
    for (int j = 0; j < BN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = j * 8 + (lane & 3) * 2 + (e & 1);
        if (col >= ch.count) s[j][e] = kNegInf;
      }
  }
}

// Online softmax in base 2 over a chunk's (masked) scores for the thread's two rows (a row's 4
// lanes of a quad reduce together; m in scaled units): s becomes P, l the running sum, alpha the
// factor the row's O takes before this chunk's P V (rescale_o).
template <int BN>
__device__ __forceinline__ void softmax_chunk(float (&s)[BN / 8][4], float (&mrow)[2], float (&lrow)[2], float sc,
                                              float (&alpha)[2]) {
#pragma unroll
  for (int e2 = 0; e2 < 2; ++e2) {
    float mxs[BN / 8];  // tree reduction (short dependency chains)
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) mxs[j] = fmaxf(s[j][2 * e2], s[j][2 * e2 + 1]);
#pragma unroll
    for (int w = BN / 16; w >= 1; w /= 2)
#pragma unroll
      for (int j = 0; j < w; ++j) mxs[j] = fmaxf(mxs[j], mxs[j + w]);
    float mx = mxs[0];
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float mnew = fmaxf(mrow[e2], mx * sc);
    const float muse = mnew == kNegInf ? 0.f : mnew;
    alpha[e2] = fast_exp2(mrow[e2] - muse);
    mrow[e2] = mnew;
    float sums[BN / 8];
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const float p0 = fast_exp2(fmaf(s[j][2 * e2], sc, -muse));
      const float p1 = fast_exp2(fmaf(s[j][2 * e2 + 1], sc, -muse));
      s[j][2 * e2] = p0;
      s[j][2 * e2 + 1] = p1;
      sums[j] = p0 + p1;
    }
#pragma unroll
    for (int w = BN / 16; w >= 1; w /= 2)
#pragma unroll
      for (int j = 0; j < w; ++j) sums[j] += sums[j + w];
    lrow[e2] = lrow[e2] * alpha[e2] + sums[0];
  }
}

// O's rows times their alpha, skipped for a row pair when no row of the warp changed its max
// (multiplying by 1: the same bits).
template <int D>
__device__ __forceinline__ void rescale_o(float (&o)[D / 8][4], const float (&alpha)[2]) {
#pragma unroll
  for (int e2 = 0; e2 < 2; ++e2) {
    if (__any_sync(0xffffffffu, alpha[e2] != 1.f)) {
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        o[j][2 * e2] *= alpha[e2];
        o[j][2 * e2 + 1] *= alpha[e2];
      }
    }
  }
}

// Both, for kernels that multiply P V right after.
template <int BN, int D>
__device__ __forceinline__ void online_softmax(float (&s)[BN / 8][4], float (&o)[D / 8][4], float (&mrow)[2],
                                               float (&lrow)[2], float sc) {
  float alpha[2];
  softmax_chunk<BN>(s, mrow, lrow, sc, alpha);
  rescale_o<D>(o, alpha);
}

// P's keys 16 kc .. 16 kc + 15 rounded to T as an m16n8k16 A fragment.
template <typename T, int BN>
__device__ __forceinline__ void p_fragment(const float (&s)[BN / 8][4], int kc, uint32_t (&pa)[4]) {
  pa[0] = cuda_half::Mma<T>::pack(s[2 * kc][0], s[2 * kc][1]);
  pa[1] = cuda_half::Mma<T>::pack(s[2 * kc][2], s[2 * kc][3]);
  pa[2] = cuda_half::Mma<T>::pack(s[2 * kc + 1][0], s[2 * kc + 1][1]);
  pa[3] = cuda_half::Mma<T>::pack(s[2 * kc + 1][2], s[2 * kc + 1][3]);
}

// A row's total softmax sum (its quad's partial sums) and lse; inv = 1 / l for a row that saw
// something inside the mask, else 0 (zeros out).
__device__ __forceinline__ float row_total(float l) {
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  return l;
}
__device__ __forceinline__ float row_lse(bool any, float m, float l) {
  return any ? (m + __log2f(l)) * 0.6931471805599453f : kNegInf;
}

}  // namespace tile_math
}  // namespace cuda_bsa
}  // namespace flexgen
