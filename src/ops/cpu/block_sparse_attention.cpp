// Block-sparse attention, CPU. See include/flexgen/block_sparse_attention.h for the contract.
//
// Work item = (batch row, KV head, query tile). A tile holds up to Tq consecutive query
// positions inside ONE mask query block, for all g = H / Hkv query heads of the KV head, stacked
// position-major (row r = position i * g + head j): K/V of a key range are read (and, for bf16,
// converted) once for the g heads, and a partial block's per-element mask is evaluated once per
// position, not once per head. The listed key blocks of the tile's mask block are merged into
// runs of consecutive blocks (up to kMaxRunCols keys); per run:
//   partial blocks: evaluate allowed(q, k) per element, trim the run to the rows and columns
//                   that have any allowed pair; full blocks: no mask work at all;
//   S = Q K^T, masked entries -> -inf;
//   online softmax in base 2 (scale * log2(e) folded into Q), fp32;
//   O = O * alpha + P V.
// Two implementations of a run:
//   * "lanes" (AVX-512, tiles of more than a few rows): the tile's rows live in vector lanes.
//     Q is packed once per tile as Q^T [d][rows]; S^T [keys][rows] = K . Q^T and
//     O^T [d][rows] += V^T . S^T are register-blocked micro-kernels (12 x 32 accumulators,
//     one broadcast operand straight from the K/V cache rows, so K/V are never packed or
//     transposed); the mask, the max, exp2 and the rescale are plain lane-wise vector ops.
//     bf16 inputs (even head_dim, AVX512-BF16 at build time): S^T = K . Q^T uses vdpbf16ps on
//     the raw bf16 values (exact products, fp32 accumulation, twice the fp32 FMA rate); P V
//     stays fp32 (V widened), so P is never rounded to bf16.
//   * "rows" (decode and other small tiles, and builds without AVX-512): S = Q K^T by dot
//     products over K rows, O += P V by axpy, the tile's rows in a row-major scratch.
// BLAS sgemm was measured and dropped: OpenBLAS (openmp) called from inside the
// at::parallel_for region ran at 2-5 GFLOP/s on 2 threads (see docs/kernel.md).
// Work items are handed out dynamically (atomic counter, most expensive first) to the
// at::parallel_for threads.
#include "cpu/block_sparse_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#if defined(__AVX512F__)
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns falsely about _mm512_undefined_* inside its own intrinsics (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define FLEXGEN_BSA_AVX512 1
#else
#define FLEXGEN_BSA_AVX512 0
#endif

namespace flexgen {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;
constexpr int64_t kMaxRunCols = 256;  // widest key run handled at once (>= block size otherwise)

// ---------------------------------------------------------------------------------------------

#if !FLEXGEN_BSA_AVX512
// dot(a, b) over n floats.
inline float dot(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int u = 0; u < 8; ++u) s[u] += a[c + u] * b[c + u];
  float t = 0;
  for (; c < n; ++c) t += a[c] * b[c];
  return t + ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// C[M,N] (ldc) = A[M,K] (lda) . B[N,K]^T (ldb), row-major, by dot products (few rows).
void gemm_abt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
              int64_t ldb, float* C, int64_t ldc) {
  for (int64_t j = 0; j < N; ++j) {
    const float* b = B + j * ldb;
    for (int64_t i = 0; i < M; ++i) C[i * ldc + j] = dot(A + i * lda, b, K);
  }
}

// C[M,N] (ldc) += A[M,K] (lda) . B[K,N] (ldb), row-major, by axpy (few rows).
void gemm_ab_acc(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float* C, int64_t ldc) {
  for (int64_t kk = 0; kk < K; ++kk) {
    const float* b = B + kk * ldb;
    for (int64_t i = 0; i < M; ++i) {
      const float a = A[i * lda + kk];
      if (a == 0.0f) continue;
      float* c = C + i * ldc;
      for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
    }
  }
}
#endif

// ---------------------------------------------------------------------------------------------
// Row helpers.

inline float to_float(float x) { return x; }
inline float to_float(c10::BFloat16 x) {
  const uint32_t u = static_cast<uint32_t>(x.x) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// dst[c] = src[c] * mul, converting to fp32.
inline void load_row(const float* src, float* dst, int64_t n, float mul) {
  for (int64_t c = 0; c < n; ++c) dst[c] = src[c] * mul;
}
inline void load_row(const float* src, float* dst, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }
inline void load_row(const c10::BFloat16* src, float* dst, int64_t n, float mul) {
  int64_t c = 0;
#if FLEXGEN_BSA_AVX512
  const __m512 vm = _mm512_set1_ps(mul);
  for (; c + 16 <= n; c += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c));
    const __m512 f = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    _mm512_storeu_ps(dst + c, _mm512_mul_ps(f, vm));
  }
#endif
  for (; c < n; ++c) dst[c] = to_float(src[c]) * mul;
}
inline void load_row(const c10::BFloat16* src, float* dst, int64_t n) {
  int64_t c = 0;
#if FLEXGEN_BSA_AVX512
  for (; c + 16 <= n; c += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c));
    _mm512_storeu_ps(dst + c, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
#endif
  for (; c < n; ++c) dst[c] = to_float(src[c]);
}

inline void store_row(const float* src, float* dst, int64_t n, float mul) {
  for (int64_t c = 0; c < n; ++c) dst[c] = src[c] * mul;
}
inline void store_row(const float* src, c10::BFloat16* dst, int64_t n, float mul) {
  for (int64_t c = 0; c < n; ++c) dst[c] = c10::BFloat16(src[c] * mul);
}

inline float row_max(const float* x, int64_t n) {
#if FLEXGEN_BSA_AVX512
  __m512 m = _mm512_set1_ps(kNegInf);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + j));
  if (j < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - j)) - 1);
    m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), k, x + j));
  }
  return _mm512_reduce_max_ps(m);
#else
  float m = kNegInf;
  for (int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
  return m;
#endif
}

#if FLEXGEN_BSA_AVX512
// 2^x for x in [-126, 0]-ish (inputs below -126 give 0): Cephes exp2f polynomial on the
// fractional part (relative error ~2e-7) and scalef for the integer part.
inline __m512 exp2_ps(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-126.0f);
  const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GT_OQ);
  const __m512 t = _mm512_max_ps(x, lo);
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}
#endif

// x[j] = 2^(x[j] - m) in place; returns the sum. Entries of -inf become 0.
inline float exp2_sub_sum(float* x, int64_t n, float m) {
#if FLEXGEN_BSA_AVX512
  const __m512 vm = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 e = exp2_ps(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm));
    _mm512_storeu_ps(x + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (j < n) {
    const __mmask16 k = static_cast<__mmask16>((1u << (n - j)) - 1);
    const __m512 e =
        exp2_ps(_mm512_sub_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(kNegInf), k, x + j), vm));
    _mm512_mask_storeu_ps(x + j, k, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
#else
  float s = 0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = std::exp2(x[j] - m);
    s += x[j];
  }
  return s;
#endif
}

// ---------------------------------------------------------------------------------------------

struct RowMask {
  const BlockMask* bm;
  const AttentionMask* am;
  int64_t q_offset, k_offset;
};

struct WorkItem {
  int32_t b;
  int32_t kvh;
  int64_t r0, r1;  // query rows [r0, r1) of q (relative), inside one mask query block
  int64_t qb;      // mask query block
  int64_t cost;    // listed key blocks (for scheduling)
};

struct Problem {
  int64_t B, H, Hkv, g, Lq, Lk, d;
  float qmul;  // scale * log2(e)
  int64_t q_tile;
  int64_t small_rows;  // tiles with at most this many stacked rows take the "rows" path
  std::vector<RowMask> rows;  // one per batch row
};

template <typename T>
struct Views {
  const T* q;
  const T* k;
  const T* v;
  T* out;
  float* lse;  // nullptr unless requested
  int64_t qs0, qs1, qs2, ks0, ks1, ks2, vs0, vs1, vs2, os0, os1, os2;
};

// A listed key block clipped to the keys present in k/v: absolute keys [bs, be).
struct KeyBlock {
  int64_t bs, be;
  bool full;
};
// Consecutive key blocks handled together: keys [ks, ke), blocks [begin, end).
struct Run {
  int64_t ks, ke;
  bool any_partial;
  size_t begin, end;
};

// Per-thread scratch.
struct Scratch {
  std::vector<float> qf, acc, s, kbuf, vbuf, m, l;
  std::vector<uint8_t> mk;
  std::vector<KeyBlock> blocks;
  std::vector<Run> runs;
  // lanes path
  std::vector<int32_t> lane_qpos;
  std::vector<uint16_t> lane_vis, kmask;
  void reserve(int64_t rows, int64_t positions, int64_t cols, int64_t d) {
    const int64_t lanes = (rows + 31) / 32 * 32;
    qf.resize(lanes * d);
    acc.resize(lanes * d);
    s.resize(lanes * cols);
    kbuf.resize(cols * d);
    vbuf.resize(cols * d);
    m.resize(lanes);
    l.resize(lanes);
    mk.resize(positions * cols);
    lane_qpos.resize(lanes);
    kmask.resize(cols * (lanes / 16));
  }
};

// The listed key blocks of query block qb (ascending, clipped to [kv_lo, kv_hi)), merged into
// runs of consecutive blocks of at most cols_cap keys.
void collect_runs(const BlockMask& bm, int64_t qb, int64_t kv_lo, int64_t kv_hi, int64_t cols_cap,
                  Scratch& S) {
  S.blocks.clear();
  S.runs.clear();
  const int32_t* f = bm.full_indices.data();
  const int32_t* p = bm.partial_indices.data();
  int32_t fi = bm.full_offsets[qb], fe = bm.full_offsets[qb + 1];
  int32_t pi = bm.partial_offsets[qb], pe = bm.partial_offsets[qb + 1];
  const int64_t B = bm.block_size;
  while (fi < fe || pi < pe) {
    const bool full = pi >= pe || (fi < fe && f[fi] < p[pi]);
    const int64_t kb = full ? f[fi++] : p[pi++];
    const int64_t bs = std::max(kb * B, kv_lo), be = std::min((kb + 1) * B, kv_hi);
    if (be <= bs) continue;
    if (!S.runs.empty() && S.runs.back().ke == bs && be - S.runs.back().ks <= cols_cap) {
      Run& r = S.runs.back();
      r.ke = be;
      r.any_partial |= !full;
      r.end = S.blocks.size() + 1;
    } else {
      S.runs.push_back(Run{bs, be, !full, S.blocks.size(), S.blocks.size() + 1});
    }
    S.blocks.push_back(KeyBlock{bs, be, full});
  }
}

// K and V rows [kfirst, kfirst + n) of one KV head as fp32 (pointers into the cache for fp32,
// converted into scratch for bf16).
template <typename T>
void kv_rows(const Views<T>& V, const T* kbase, const T* vbase, int64_t kfirst, int64_t n, int64_t d,
             Scratch& S, const float*& kp, int64_t& ldk, const float*& vp, int64_t& ldv, bool need_k = true) {
  if constexpr (std::is_same<T, float>::value) {
    kp = kbase + kfirst * V.ks2;
    vp = vbase + kfirst * V.vs2;
    ldk = V.ks2;
    ldv = V.vs2;
  } else {
    for (int64_t c = 0; c < n; ++c) {
      if (need_k) load_row(kbase + (kfirst + c) * V.ks2, S.kbuf.data() + c * d, d);
      load_row(vbase + (kfirst + c) * V.vs2, S.vbuf.data() + c * d, d);
    }
    kp = S.kbuf.data();
    vp = S.vbuf.data();
    ldk = ldv = d;
  }
}

#if FLEXGEN_BSA_AVX512
// 16 values (mask m) of a row as fp32.
inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(const c10::BFloat16* p, __mmask16 m) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// Small tiles (decode): S[i][j] = A_i . K_j for MR rows, j < N.
template <int MR, typename T>
void small_scores_mr(int64_t N, int64_t d, const float* a, const T* K, int64_t ldk, float* S, int64_t lds) {
  for (int64_t j = 0; j < N; ++j) {
    const T* k = K + j * ldk;
    __m512 acc[MR];
    for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = tail_mask(d - c);
      const __m512 kv = load16(k + c, m);
      for (int r = 0; r < MR; ++r) acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + r * d + c), kv, acc[r]);
    }
    for (int r = 0; r < MR; ++r) S[r * lds + j] = _mm512_reduce_add_ps(acc[r]);
  }
}

// S[i][j] = A_i . K_j for i < M, j < N: each K row read once per 4 rows.
template <typename T>
void small_scores(int64_t M, int64_t N, int64_t d, const float* A, const T* K, int64_t ldk, float* S,
                  int64_t lds) {
  for (int64_t i0 = 0; i0 < M; i0 += 4) {
    const float* a = A + i0 * d;
    float* s = S + i0 * lds;
    switch (std::min<int64_t>(4, M - i0)) {
      case 1: small_scores_mr<1>(N, d, a, K, ldk, s, lds); break;
      case 2: small_scores_mr<2>(N, d, a, K, ldk, s, lds); break;
      case 3: small_scores_mr<3>(N, d, a, K, ldk, s, lds); break;
      default: small_scores_mr<4>(N, d, a, K, ldk, s, lds); break;
    }
  }
}

// O_i += sum_j P[i][j] V_j for MR rows: 16 columns of the MR rows stay in registers while the
// keys stream by.
template <int MR, typename T>
void small_pv_mr(int64_t N, int64_t d, const float* P, int64_t ldp, const T* Vr, int64_t ldv, float* O) {
  for (int64_t c = 0; c < d; c += 16) {
    const __mmask16 m = tail_mask(d - c);
    __m512 acc[MR];
    for (int r = 0; r < MR; ++r) acc[r] = _mm512_maskz_loadu_ps(m, O + r * d + c);
    for (int64_t j = 0; j < N; ++j) {
      const __m512 vv = load16(Vr + j * ldv + c, m);
      for (int r = 0; r < MR; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(P[r * ldp + j]), vv, acc[r]);
    }
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_ps(O + r * d + c, m, acc[r]);
  }
}

template <typename T>
void small_pv(int64_t M, int64_t N, int64_t d, const float* P, int64_t ldp, const T* Vr, int64_t ldv,
              float* O) {
  for (int64_t i0 = 0; i0 < M; i0 += 4) {
    const float* p = P + i0 * ldp;
    float* o = O + i0 * d;
    switch (std::min<int64_t>(4, M - i0)) {
      case 1: small_pv_mr<1>(N, d, p, ldp, Vr, ldv, o); break;
      case 2: small_pv_mr<2>(N, d, p, ldp, Vr, ldv, o); break;
      case 3: small_pv_mr<3>(N, d, p, ldp, Vr, ldv, o); break;
      default: small_pv_mr<4>(N, d, p, ldp, Vr, ldv, o); break;
    }
  }
}
#endif

// "rows" path: decode steps and other small tiles (and everything without AVX-512).
template <typename T>
void run_tile_rows(const Problem& P, const Views<T>& V, const WorkItem& w, Scratch& S, int64_t cols_cap) {
  const RowMask& rm = P.rows[w.b];
  const BlockMask& bm = *rm.bm;
  const AttentionMask& am = *rm.am;
  const int64_t d = P.d, g = P.g;
  const int64_t npos = w.r1 - w.r0;
  const int64_t M = npos * g;  // stacked rows, r = i * g + j

  // Q tile, scaled into the base-2 domain.
  float* qf = S.qf.data();
  for (int64_t i = 0; i < npos; ++i)
    for (int64_t j = 0; j < g; ++j) {
      const T* src = V.q + w.b * V.qs0 + (w.kvh * g + j) * V.qs1 + (w.r0 + i) * V.qs2;
      load_row(src, qf + (i * g + j) * d, d, P.qmul);
    }
  float* acc = S.acc.data();
  std::fill(acc, acc + M * d, 0.0f);
  float* mrow = S.m.data();
  float* lrow = S.l.data();
  std::fill(mrow, mrow + M, kNegInf);
  std::fill(lrow, lrow + M, 0.0f);

  const int64_t kv_lo = std::max<int64_t>(rm.k_offset, 0);
  const int64_t kv_hi = std::min(rm.k_offset + P.Lk, bm.kv_len);
  collect_runs(bm, w.qb, kv_lo, kv_hi, cols_cap, S);
  const int64_t qa = rm.q_offset + w.r0;  // absolute first query position of the tile
  const int32_t* gid = am.group_ids.data();
  const uint8_t* vis = am.spec.visible.data();
  const int64_t G = am.spec.num_groups;
  const bool causal = am.spec.causal;
  const T* kbase = V.k + w.b * V.ks0 + w.kvh * V.ks1;
  const T* vbase = V.v + w.b * V.vs0 + w.kvh * V.vs1;
  const int64_t ldS = cols_cap;

  for (const Run& run : S.runs) {
    const int64_t ks = run.ks, ke = run.ke, n_all = ke - ks;
    const bool any_partial = run.any_partial;

    // Row/column extents of the allowed pairs (positions x keys).
    int64_t i0 = 0, i1 = npos, c0 = 0, c1 = n_all;
    uint8_t* mk = S.mk.data();
    if (any_partial) {
      i0 = npos;
      i1 = 0;
      c0 = n_all;
      c1 = 0;
      for (int64_t i = 0; i < npos; ++i) {
        uint8_t* mrow_k = mk + i * ldS;
        const int64_t qpos = qa + i;
        const uint8_t* vrow = vis + static_cast<int64_t>(gid[qpos]) * G;
        const int64_t lim = causal ? std::min(ke, qpos + 1) - ks : n_all;  // columns < lim pass causality
        int64_t first = -1, last = -1;
        for (size_t r = run.begin; r < run.end; ++r) {
          const int64_t bs = S.blocks[r].bs - ks, be = S.blocks[r].be - ks;
          if (S.blocks[r].full) {
            std::memset(mrow_k + bs, 1, be - bs);
          } else {
            const int32_t* gk = gid + ks;
            for (int64_t c = bs; c < be; ++c) mrow_k[c] = static_cast<uint8_t>((c < lim) & (vrow[gk[c]] != 0));
          }
        }
        for (int64_t c = 0; c < n_all; ++c)
          if (mrow_k[c]) {
            first = c;
            break;
          }
        if (first < 0) continue;
        for (int64_t c = n_all - 1; c >= first; --c)
          if (mrow_k[c]) {
            last = c;
            break;
          }
        i0 = std::min(i0, i);
        i1 = i + 1;
        c0 = std::min(c0, first);
        c1 = std::max(c1, last + 1);
      }
      if (i1 <= i0) continue;
    }
    const int64_t n = c1 - c0;
    const int64_t r0 = i0 * g, r1 = i1 * g, Mr = r1 - r0;
    float* sbuf = S.s.data();
#if FLEXGEN_BSA_AVX512
    // K/V read straight from the cache (bf16 widened in registers), each row once per 4 rows.
    const T* kraw = kbase + (ks + c0 - rm.k_offset) * V.ks2;
    const T* vraw = vbase + (ks + c0 - rm.k_offset) * V.vs2;
    small_scores(Mr, n, d, qf + r0 * d, kraw, V.ks2, sbuf + r0 * ldS, ldS);
#else
    const float* kp;
    const float* vp;
    int64_t ldk, ldv;
    kv_rows(V, kbase, vbase, ks + c0 - rm.k_offset, n, d, S, kp, ldk, vp, ldv);
    gemm_abt(Mr, n, d, qf + r0 * d, d, kp, ldk, sbuf + r0 * ldS, ldS);
#endif

    for (int64_t i = i0; i < i1; ++i) {
      const uint8_t* mrow_k = mk + i * ldS + c0;
      for (int64_t j = 0; j < g; ++j) {
        const int64_t r = i * g + j;
        float* srow = sbuf + r * ldS;
        if (any_partial)
          for (int64_t c = 0; c < n; ++c) srow[c] = mrow_k[c] ? srow[c] : kNegInf;
        const float bmax = row_max(srow, n);
        if (bmax == kNegInf) {  // nothing allowed for this row in this run
          std::fill(srow, srow + n, 0.0f);
          continue;
        }
        const float mnew = std::max(mrow[r], bmax);
        const float alpha = mrow[r] == kNegInf ? 0.0f : std::exp2(mrow[r] - mnew);
        const float sum = exp2_sub_sum(srow, n, mnew);
        lrow[r] = lrow[r] * alpha + sum;
        mrow[r] = mnew;
        if (alpha != 1.0f) {
          float* a = acc + r * d;
          for (int64_t c = 0; c < d; ++c) a[c] *= alpha;
        }
      }
    }
#if FLEXGEN_BSA_AVX512
    small_pv(Mr, n, d, sbuf + r0 * ldS, ldS, vraw, V.vs2, acc + r0 * d);
#else
    gemm_ab_acc(Mr, d, n, sbuf + r0 * ldS, ldS, vp, ldv, acc + r0 * d, d);
#endif
  }

  // Normalise and write out; rows with nothing allowed stay zero.
  for (int64_t i = 0; i < npos; ++i)
    for (int64_t j = 0; j < g; ++j) {
      const int64_t r = i * g + j, h = w.kvh * g + j;
      T* dst = V.out + w.b * V.os0 + h * V.os1 + (w.r0 + i) * V.os2;
      const bool any = lrow[r] > 0.0f;
      store_row(acc + r * d, dst, d, any ? 1.0f / lrow[r] : 0.0f);
      if (V.lse != nullptr) {
        V.lse[(w.b * P.H + h) * P.Lq + w.r0 + i] =
            any ? static_cast<float>((mrow[r] + std::log2(static_cast<double>(lrow[r]))) * kLn2) : kNegInf;
      }
    }
}

#if FLEXGEN_BSA_AVX512
// ---------------------------------------------------------------------------------------------
// "lanes" path. C[p][lanes] (+)= sum_k A[p * ap + k * ak] * B[k * ldb + lanes] for MR values of p
// and NV vectors of 16 lanes: MR x NV accumulators in registers, A broadcast, B loaded.
template <int MR, int NV, bool ACC>
inline void ukernel(int64_t K, const float* A, int64_t ap, int64_t ak, const float* B, int64_t ldb,
                    float* C, int64_t ldc) {
  __m512 c[MR][NV];
  for (int p = 0; p < MR; ++p)
    for (int v = 0; v < NV; ++v) c[p][v] = ACC ? _mm512_loadu_ps(C + p * ldc + 16 * v) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_ps(B + k * ldb + 16 * v);
    const float* a = A + k * ak;
    for (int p = 0; p < MR; ++p) {
      const __m512 av = _mm512_set1_ps(a[p * ap]);
      for (int v = 0; v < NV; ++v) c[p][v] = _mm512_fmadd_ps(av, b[v], c[p][v]);
    }
  }
  for (int p = 0; p < MR; ++p)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(C + p * ldc + 16 * v, c[p][v]);
}

constexpr int kMR = 12;

template <int NV, bool ACC>
void ukernel_mr(int mr, int64_t K, const float* A, int64_t ap, int64_t ak, const float* B, int64_t ldb,
                float* C, int64_t ldc) {
  switch (mr) {
#define FLEXGEN_BSA_CASE(n) \
  case n: ukernel<n, NV, ACC>(K, A, ap, ak, B, ldb, C, ldc); break;
    FLEXGEN_BSA_CASE(1) FLEXGEN_BSA_CASE(2) FLEXGEN_BSA_CASE(3) FLEXGEN_BSA_CASE(4)
    FLEXGEN_BSA_CASE(5) FLEXGEN_BSA_CASE(6) FLEXGEN_BSA_CASE(7) FLEXGEN_BSA_CASE(8)
    FLEXGEN_BSA_CASE(9) FLEXGEN_BSA_CASE(10) FLEXGEN_BSA_CASE(11) FLEXGEN_BSA_CASE(12)
#undef FLEXGEN_BSA_CASE
    default: break;
  }
}

// The product above for p in [0, np), lane chunks [ch0, ch1) (16 lanes each).
template <bool ACC>
void lanes_gemm(int64_t np, int64_t K, const float* A, int64_t ap, int64_t ak, const float* B,
                int64_t ldb, float* C, int64_t ldc, int64_t ch0, int64_t ch1) {
  for (int64_t ch = ch0; ch < ch1;) {
    const int nv = ch1 - ch >= 2 ? 2 : 1;
    const float* Bc = B + ch * 16;
    float* Cc = C + ch * 16;
    for (int64_t p = 0; p < np; p += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, np - p));
      if (nv == 2)
        ukernel_mr<2, ACC>(mr, K, A + p * ap, ap, ak, Bc, ldb, Cc + p * ldc, ldc);
      else
        ukernel_mr<1, ACC>(mr, K, A + p * ap, ap, ak, Bc, ldb, Cc + p * ldc, ldc);
    }
    ch += nv;
  }
}

#if defined(__AVX512BF16__)
// bf16 inputs: C[p][lanes] = sum_t dot2(A[p * ap + 2t .. 2t+1], B2[t][lanes]) with vdpbf16ps: the
// bf16 products are exact and accumulate in fp32 (two per instruction, twice the fp32 rate).
// A = bf16 rows (pairs broadcast as 32 bits), B2 = pairs of bf16 packed per lane.
constexpr bool kHaveBf16Dot = true;
template <int MR, int NV>
inline void ukernel_bf16(int64_t K2, const c10::BFloat16* A, int64_t ap, const uint32_t* B, int64_t ldb,
                         float* C, int64_t ldc) {
  __m512 c[MR][NV];
  for (int p = 0; p < MR; ++p)
    for (int v = 0; v < NV; ++v) c[p][v] = _mm512_setzero_ps();
  for (int64_t t = 0; t < K2; ++t) {
    __m512i b[NV];
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(B + t * ldb + 16 * v);
    for (int p = 0; p < MR; ++p) {
      int32_t pair;
      std::memcpy(&pair, A + p * ap + 2 * t, sizeof pair);
      const __m512i av = _mm512_set1_epi32(pair);
      for (int v = 0; v < NV; ++v) c[p][v] = _mm512_dpbf16_ps(c[p][v], (__m512bh)av, (__m512bh)b[v]);
    }
  }
  for (int p = 0; p < MR; ++p)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(C + p * ldc + 16 * v, c[p][v]);
}

template <int NV>
void ukernel_bf16_mr(int mr, int64_t K2, const c10::BFloat16* A, int64_t ap, const uint32_t* B, int64_t ldb,
                     float* C, int64_t ldc) {
  switch (mr) {
#define FLEXGEN_BSA_CASE(n) \
  case n: ukernel_bf16<n, NV>(K2, A, ap, B, ldb, C, ldc); break;
    FLEXGEN_BSA_CASE(1) FLEXGEN_BSA_CASE(2) FLEXGEN_BSA_CASE(3) FLEXGEN_BSA_CASE(4)
    FLEXGEN_BSA_CASE(5) FLEXGEN_BSA_CASE(6) FLEXGEN_BSA_CASE(7) FLEXGEN_BSA_CASE(8)
    FLEXGEN_BSA_CASE(9) FLEXGEN_BSA_CASE(10) FLEXGEN_BSA_CASE(11) FLEXGEN_BSA_CASE(12)
#undef FLEXGEN_BSA_CASE
    default: break;
  }
}

// S^T[j][lanes] = K[j] . Q[lanes] (unscaled) for j < np, lane chunks [ch0, ch1).
void lanes_gemm_bf16(int64_t np, int64_t K2, const c10::BFloat16* A, int64_t ap, const uint32_t* B,
                     int64_t ldb, float* C, int64_t ldc, int64_t ch0, int64_t ch1) {
  for (int64_t ch = ch0; ch < ch1;) {
    const int nv = ch1 - ch >= 2 ? 2 : 1;
    for (int64_t p = 0; p < np; p += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, np - p));
      if (nv == 2)
        ukernel_bf16_mr<2>(mr, K2, A + p * ap, ap, B + ch * 16, ldb, C + p * ldc + ch * 16, ldc);
      else
        ukernel_bf16_mr<1>(mr, K2, A + p * ap, ap, B + ch * 16, ldb, C + p * ldc + ch * 16, ldc);
    }
    ch += nv;
  }
}
#else
constexpr bool kHaveBf16Dot = false;
#endif

template <typename T>
void run_tile_lanes(const Problem& P, const Views<T>& V, const WorkItem& w, Scratch& S, int64_t cols_cap) {
  const RowMask& rm = P.rows[w.b];
  const BlockMask& bm = *rm.bm;
  const AttentionMask& am = *rm.am;
  const int64_t d = P.d, g = P.g;
  const int64_t npos = w.r1 - w.r0;
  const int64_t M = npos * g;                // lanes in use, r = i * g + j
  const int64_t nch = (M + 15) / 16;         // 16-lane chunks
  const int64_t Mp = nch * 16;               // lane stride of Q^T, S^T, O^T
  const int64_t qa = rm.q_offset + w.r0;     // absolute first query position of the tile

  // bf16 with even head_dim and AVX512-BF16: S = K Q^T by bf16 pair dot products on the
  // unscaled inputs (scaled afterwards in fp32); otherwise fp32 micro-kernels on widened rows.
  constexpr bool is_bf16 = std::is_same<T, c10::BFloat16>::value;
  const bool bf16_dot = is_bf16 && kHaveBf16Dot && d % 2 == 0;
  // Q^T [d][Mp], scaled into the base-2 domain; or, for bf16_dot, Q as bf16 pairs [d/2][Mp].
  // Padding lanes are zero.
  float* qt = S.qf.data();
  uint32_t* qt2 = reinterpret_cast<uint32_t*>(S.qf.data());
  float* row = S.kbuf.data();  // one converted row
  for (int64_t r = 0; r < Mp; ++r) {
    if (r >= M) {
      if (bf16_dot)
        for (int64_t t = 0; t < d / 2; ++t) qt2[t * Mp + r] = 0;
      else
        for (int64_t c = 0; c < d; ++c) qt[c * Mp + r] = 0.0f;
      continue;
    }
    const int64_t i = r / g, j = r % g;
    const T* src = V.q + w.b * V.qs0 + (w.kvh * g + j) * V.qs1 + (w.r0 + i) * V.qs2;
    if (bf16_dot) {
      for (int64_t t = 0; t < d / 2; ++t) std::memcpy(qt2 + t * Mp + r, src + 2 * t, sizeof(uint32_t));
    } else {
      load_row(src, row, d, P.qmul);
      for (int64_t c = 0; c < d; ++c) qt[c * Mp + r] = row[c];
    }
  }
  const __m512 vqmul = _mm512_set1_ps(bf16_dot ? P.qmul : 1.0f);
  float* ot = S.acc.data();  // O^T [d][Mp]
  std::fill(ot, ot + d * Mp, 0.0f);
  float* mlane = S.m.data();
  float* llane = S.l.data();
  std::fill(mlane, mlane + Mp, kNegInf);
  std::fill(llane, llane + Mp, 0.0f);

  const int64_t kv_lo = std::max<int64_t>(rm.k_offset, 0);
  const int64_t kv_hi = std::min(rm.k_offset + P.Lk, bm.kv_len);
  collect_runs(bm, w.qb, kv_lo, kv_hi, cols_cap, S);

  // Lane tables for partial blocks: absolute query position per lane (-1 on padding) and, per
  // key group, which lanes see it.
  const int32_t* gid = am.group_ids.data();
  const int64_t G = am.spec.num_groups;
  const bool causal = am.spec.causal;
  bool any_partial_run = false;
  for (const Run& run : S.runs) any_partial_run |= run.any_partial;
  uint16_t valid[64];
  for (int64_t ch = 0; ch < nch; ++ch) {
    const int64_t left = M - ch * 16;
    valid[ch] = left >= 16 ? 0xFFFF : static_cast<uint16_t>((1u << left) - 1);
  }
  if (any_partial_run) {
    int32_t* qpos = S.lane_qpos.data();
    for (int64_t r = 0; r < Mp; ++r) qpos[r] = r < M ? static_cast<int32_t>(qa + r / g) : -1;
    S.lane_vis.assign(G * nch, 0);
    for (int64_t r = 0; r < M; ++r) {
      const uint8_t* vrow = am.spec.visible.data() + static_cast<int64_t>(gid[qa + r / g]) * G;
      for (int64_t gk = 0; gk < G; ++gk)
        if (vrow[gk]) S.lane_vis[gk * nch + r / 16] |= static_cast<uint16_t>(1u << (r % 16));
    }
  }

  const T* kbase = V.k + w.b * V.ks0 + w.kvh * V.ks1;
  const T* vbase = V.v + w.b * V.vs0 + w.kvh * V.vs1;
  float* st = S.s.data();  // S^T [keys][Mp]
  const __m512 neg_inf = _mm512_set1_ps(kNegInf);

  for (const Run& run : S.runs) {
    const int64_t ks = run.ks, n_all = run.ke - run.ks;
    int64_t c0 = 0, c1 = n_all, ch0 = 0, ch1 = nch;
    uint16_t* km = S.kmask.data();  // [key][chunk]
    if (run.any_partial) {
      uint16_t lanes_or[64] = {0};
      c0 = n_all;
      c1 = 0;
      for (size_t bi = run.begin; bi < run.end; ++bi) {
        const KeyBlock& kb = S.blocks[bi];
        for (int64_t kp = kb.bs; kp < kb.be; ++kp) {
          const int64_t j = kp - ks;
          uint16_t any = 0;
          const uint16_t* lv = S.lane_vis.data() + static_cast<int64_t>(gid[kp]) * nch;
          const __m512i kv = _mm512_set1_epi32(static_cast<int32_t>(kp));
          for (int64_t ch = 0; ch < nch; ++ch) {
            uint16_t m;
            if (kb.full) {
              m = valid[ch];
            } else {
              m = lv[ch];
              if (causal && m) {
                const __m512i qv = _mm512_loadu_si512(S.lane_qpos.data() + ch * 16);
                m &= static_cast<uint16_t>(_mm512_cmpge_epi32_mask(qv, kv));
              }
            }
            km[j * nch + ch] = m;
            lanes_or[ch] |= m;
            any |= m;
          }
          if (any) {
            c0 = std::min(c0, j);
            c1 = j + 1;
          }
        }
      }
      if (c1 <= c0) continue;
      ch0 = 0;
      while (ch0 < nch && lanes_or[ch0] == 0) ++ch0;
      ch1 = nch;
      while (ch1 > ch0 && lanes_or[ch1 - 1] == 0) --ch1;
    }
    const int64_t n = c1 - c0;
    const float* kp;
    const float* vp;
    int64_t ldk, ldv;
    kv_rows(V, kbase, vbase, ks + c0 - rm.k_offset, n, d, S, kp, ldk, vp, ldv, !bf16_dot);

    // S^T[j][lanes] = sum_c K[j][c] * Q^T[c][lanes]
#if defined(__AVX512BF16__)
    if constexpr (is_bf16) {
      if (bf16_dot) {
        const c10::BFloat16* kraw = kbase + (ks + c0 - rm.k_offset) * V.ks2;
        lanes_gemm_bf16(n, d / 2, kraw, V.ks2, qt2, Mp, st, Mp, ch0, ch1);
      }
    }
#endif
    if (!bf16_dot) lanes_gemm<false>(n, d, kp, ldk, 1, qt, Mp, st, Mp, ch0, ch1);

    for (int64_t ch = ch0; ch < ch1; ++ch) {
      float* sc = st + ch * 16;
      if (bf16_dot)
        for (int64_t j = 0; j < n; ++j) _mm512_storeu_ps(sc + j * Mp, _mm512_mul_ps(_mm512_loadu_ps(sc + j * Mp), vqmul));
      if (run.any_partial)
        for (int64_t j = 0; j < n; ++j) {
          const __mmask16 m = km[(j + c0) * nch + ch];
          _mm512_storeu_ps(sc + j * Mp, _mm512_mask_blend_ps(m, neg_inf, _mm512_loadu_ps(sc + j * Mp)));
        }
      __m512 mx = neg_inf;
      for (int64_t j = 0; j < n; ++j) mx = _mm512_max_ps(mx, _mm512_loadu_ps(sc + j * Mp));
      const __m512 mold = _mm512_loadu_ps(mlane + ch * 16);
      const __m512 mnew = _mm512_max_ps(mold, mx);
      const __m512 msafe = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(mnew, neg_inf, _CMP_EQ_OQ), mnew,
                                                _mm512_setzero_ps());
      const __m512 alpha = exp2_ps(_mm512_sub_ps(mold, msafe));
      __m512 sum = _mm512_setzero_ps();
      for (int64_t j = 0; j < n; ++j) {
        const __m512 p = exp2_ps(_mm512_sub_ps(_mm512_loadu_ps(sc + j * Mp), msafe));
        _mm512_storeu_ps(sc + j * Mp, p);
        sum = _mm512_add_ps(sum, p);
      }
      _mm512_storeu_ps(llane + ch * 16, _mm512_fmadd_ps(_mm512_loadu_ps(llane + ch * 16), alpha, sum));
      _mm512_storeu_ps(mlane + ch * 16, mnew);
      float* oc = ot + ch * 16;
      for (int64_t c = 0; c < d; ++c) _mm512_storeu_ps(oc + c * Mp, _mm512_mul_ps(_mm512_loadu_ps(oc + c * Mp), alpha));
    }

    // O^T[c][lanes] += sum_j V[j][c] * P^T[j][lanes]
    lanes_gemm<true>(d, n, vp, 1, ldv, st, Mp, ot, Mp, ch0, ch1);
  }

  // Normalise and write out; lanes with nothing allowed stay zero.
  for (int64_t r = 0; r < M; ++r) {
    const int64_t i = r / g, j = r % g, h = w.kvh * g + j;
    const bool any = llane[r] > 0.0f;
    const float inv = any ? 1.0f / llane[r] : 0.0f;
    for (int64_t c = 0; c < d; ++c) row[c] = ot[c * Mp + r];
    T* dst = V.out + w.b * V.os0 + h * V.os1 + (w.r0 + i) * V.os2;
    store_row(row, dst, d, inv);
    if (V.lse != nullptr) {
      V.lse[(w.b * P.H + h) * P.Lq + w.r0 + i] =
          any ? static_cast<float>((mlane[r] + std::log2(static_cast<double>(llane[r]))) * kLn2) : kNegInf;
    }
  }
}
#endif

template <typename T>
void run_tile(const Problem& P, const Views<T>& V, const WorkItem& w, Scratch& S, int64_t cols_cap) {
#if FLEXGEN_BSA_AVX512
  if ((w.r1 - w.r0) * P.g > P.small_rows) {
    run_tile_lanes(P, V, w, S, cols_cap);
    return;
  }
#endif
  run_tile_rows(P, V, w, S, cols_cap);
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("block_sparse_attention: " + what);
}

std::string shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Last dim contiguous and rows at least d apart (what the tile products need).
at::Tensor usable(const at::Tensor& t) {
  if (t.stride(3) == 1 && (t.size(2) <= 1 || t.stride(2) >= t.size(3))) return t;
  return t.contiguous();
}

template <typename T>
void launch(const Problem& P, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
            at::Tensor& out, float* lse) {
  Views<T> V{};
  V.q = q.data_ptr<T>();
  V.k = k.data_ptr<T>();
  V.v = v.data_ptr<T>();
  V.out = out.data_ptr<T>();
  V.lse = lse;
  V.qs0 = q.stride(0), V.qs1 = q.stride(1), V.qs2 = q.stride(2);
  V.ks0 = k.stride(0), V.ks1 = k.stride(1), V.ks2 = k.stride(2);
  V.vs0 = v.stride(0), V.vs1 = v.stride(1), V.vs2 = v.stride(2);
  V.os0 = out.stride(0), V.os1 = out.stride(1), V.os2 = out.stride(2);

  // Work items: split each batch row's query rows at mask-block boundaries, then into tiles.
  std::vector<WorkItem> items;
  int64_t max_block = 1;
  for (int64_t b = 0; b < P.B; ++b) {
    const RowMask& rm = P.rows[b];
    const BlockMask& bm = *rm.bm;
    max_block = std::max(max_block, bm.block_size);
    const int64_t lo = std::max<int64_t>(0, -rm.q_offset);
    const int64_t hi = std::min(P.Lq, bm.q_len - rm.q_offset);  // rows past the mask: zeros
    int64_t r = lo;
    while (r < hi) {
      const int64_t qb = (rm.q_offset + r) / bm.block_size;
      const int64_t block_end = std::min(hi, (qb + 1) * bm.block_size - rm.q_offset);
      const int64_t cost = (bm.full_offsets[qb + 1] - bm.full_offsets[qb]) +
                           (bm.partial_offsets[qb + 1] - bm.partial_offsets[qb]);
      for (int64_t t = r; t < block_end; t += P.q_tile) {
        const int64_t te = std::min(block_end, t + P.q_tile);
        if (cost == 0) continue;  // nothing listed: zeros
        for (int64_t h = 0; h < P.Hkv; ++h)
          items.push_back(WorkItem{static_cast<int32_t>(b), static_cast<int32_t>(h), t, te, qb,
                                   cost * (te - t)});
      }
      r = block_end;
    }
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const WorkItem& a, const WorkItem& b) { return a.cost > b.cost; });
  if (items.empty()) return;

  const int64_t cols_cap = std::max(kMaxRunCols, max_block);
  const int64_t tile_cap = std::min(P.q_tile, P.Lq);  // a decode step needs one position
  const int64_t rows_cap = tile_cap * P.g;
  std::atomic<size_t> next{0};
  const int64_t nthreads = std::min<int64_t>(at::get_num_threads(), static_cast<int64_t>(items.size()));
  at::parallel_for(0, nthreads, 1, [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      Scratch S;
      S.reserve(rows_cap, tile_cap, cols_cap, P.d);
      for (size_t i = next.fetch_add(1); i < items.size(); i = next.fetch_add(1))
        run_tile<T>(P, V, items[i], S, cols_cap);
    }
  });
}

}  // namespace

std::string block_sparse_attention_backend() {
#if FLEXGEN_BSA_AVX512
  return "avx512 micro-kernels (lanes path) + dot/axpy rows path for small tiles";
#else
  return "portable rows path (no AVX-512 at build time)";
#endif
}

BlockSparseAttentionResult block_sparse_attention(const at::Tensor& q_in, const at::Tensor& k_in,
                                                  const at::Tensor& v_in,
                                                  const std::vector<SparseMaskRef>& masks,
                                                  const BlockSparseAttentionOptions& options) {
  check(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4,
        "q, k, v must be 4-D [batch, heads, length, head_dim]; got q " + shape(q_in) + ", k " +
            shape(k_in) + ", v " + shape(v_in));
  check(q_in.device().is_cpu() && k_in.device().is_cpu() && v_in.device().is_cpu(),
        "this is the CPU kernel; tensors must be on the CPU");
  const auto dtype = q_in.scalar_type();
  check(dtype == at::kFloat || dtype == at::kBFloat16, "dtype must be float32 or bfloat16");
  check(k_in.scalar_type() == dtype && v_in.scalar_type() == dtype, "q, k and v must have one dtype");
  const int64_t B = q_in.size(0), H = q_in.size(1), Lq = q_in.size(2), d = q_in.size(3);
  const int64_t Hkv = k_in.size(1), Lk = k_in.size(2);
  check(k_in.size(0) == B && v_in.size(0) == B, "batch sizes differ: q " + shape(q_in) + ", k " +
                                                   shape(k_in) + ", v " + shape(v_in));
  check(k_in.sizes() == v_in.sizes(), "k " + shape(k_in) + " and v " + shape(v_in) + " differ");
  check(k_in.size(3) == d, "head_dim of q (" + std::to_string(d) + ") and k (" +
                               std::to_string(k_in.size(3)) + ") differ");
  check(Hkv > 0 && H % Hkv == 0, "query heads (" + std::to_string(H) +
                                     ") must be a multiple of KV heads (" + std::to_string(Hkv) + ")");
  check(d > 0, "head_dim must be positive");
  check(masks.size() == 1 || static_cast<int64_t>(masks.size()) == B,
        "need 1 mask or one per batch row (" + std::to_string(B) + "), got " +
            std::to_string(masks.size()));

  Problem P;
  P.B = B, P.H = H, P.Hkv = Hkv, P.g = H / Hkv, P.Lq = Lq, P.Lk = Lk, P.d = d;
  const double scale = options.scale != 0.0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(d));
  P.qmul = static_cast<float>(scale * kLog2e);
  // Measured on a 2-core AVX-512 VM (bench/attention): ~192 stacked rows (lanes) per tile.
  P.q_tile = options.q_tile > 0 ? options.q_tile : std::max<int64_t>(8, 192 / P.g);
  P.q_tile = std::max<int64_t>(1, std::min(P.q_tile, 1024 / P.g));  // lanes path: at most 1024 lanes
  P.small_rows = options.decode_max_rows > 0 ? options.decode_max_rows : 16;
  for (int64_t b = 0; b < B; ++b) {
    const SparseMaskRef& ref = masks.size() == 1 ? masks[0] : masks[b];
    const std::string row = "batch row " + std::to_string(b) + ": ";
    check(ref.block_mask != nullptr && ref.mask != nullptr, row + "null mask");
    const BlockMask& bm = *ref.block_mask;
    check(bm.block_size > 0 && static_cast<int64_t>(bm.full_offsets.size()) == bm.num_q_blocks + 1 &&
              static_cast<int64_t>(bm.partial_offsets.size()) == bm.num_q_blocks + 1 &&
              bm.num_q_blocks * bm.block_size >= bm.q_len,
          row + "malformed block mask");
    check(ref.mask->length() >= std::max(bm.q_len, bm.kv_len),
          row + "attention mask has " + std::to_string(ref.mask->length()) +
              " positions, block mask covers " + std::to_string(std::max(bm.q_len, bm.kv_len)));
    check(ref.mask->spec.visible.size() ==
              static_cast<size_t>(ref.mask->spec.num_groups) * ref.mask->spec.num_groups,
          row + "mask spec visibility matrix has the wrong size");
    check(ref.q_offset >= 0 && ref.k_offset >= 0, row + "negative position offset");
    P.rows.push_back(RowMask{&bm, ref.mask, ref.q_offset, ref.k_offset});
  }

  const at::Tensor q = usable(q_in), k = usable(k_in), v = usable(v_in);
  BlockSparseAttentionResult res;
  res.out = at::zeros({B, H, Lq, d}, q_in.options());
  float* lse = nullptr;
  if (options.return_lse) {
    res.lse = at::full({B, H, Lq}, -std::numeric_limits<float>::infinity(), q_in.options().dtype(at::kFloat));
    lse = res.lse.data_ptr<float>();
  }
  if (B == 0 || H == 0 || Lq == 0) return res;
  if (dtype == at::kFloat)
    launch<float>(P, q, k, v, res.out, lse);
  else
    launch<c10::BFloat16>(P, q, k, v, res.out, lse);
  return res;
}

at::Tensor block_sparse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const BlockMask& block_mask, const AttentionMask& mask,
                                  int64_t q_offset, int64_t k_offset, double scale) {
  BlockSparseAttentionOptions opt;
  opt.scale = scale;
  return block_sparse_attention(q, k, v, {SparseMaskRef{&block_mask, &mask, q_offset, k_offset}}, opt).out;
}


at::Tensor block_sparse_attention_groups(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                         const std::vector<AttentionMask>& masks, double scale,
                                         int64_t q_offset, int64_t k_offset, int64_t block_size) {
  check(q.dim() == 4 && k.dim() == 4, "q and k must be 4-D");
  const int64_t B = q.size(0), Lq = q.size(2), Lk = k.size(2);
  check(masks.size() == 1 || static_cast<int64_t>(masks.size()) == B,
        "need one AttentionMask per batch row (" + std::to_string(B) + ") or one for all, got " +
            std::to_string(masks.size()));
  check(q_offset >= 0 && k_offset >= 0, "negative q_offset/k_offset");
  std::vector<BlockMask> blocks;
  blocks.reserve(masks.size());
  std::vector<SparseMaskRef> refs;
  for (size_t b = 0; b < masks.size(); ++b) {
    const AttentionMask& m = masks[b];
    check(m.length() >= q_offset + Lq && m.length() >= k_offset + Lk,
          "AttentionMask of row " + std::to_string(b) + " covers " + std::to_string(m.length()) +
              " positions, attention needs queries up to " + std::to_string(q_offset + Lq) +
              " and keys up to " + std::to_string(k_offset + Lk));
    blocks.push_back(build_block_mask_rows(m, block_size, q_offset, q_offset + Lq));
  }
  for (size_t b = 0; b < masks.size(); ++b) refs.push_back(SparseMaskRef{&blocks[b], &masks[b], q_offset, k_offset});
  BlockSparseAttentionOptions opt;
  opt.scale = scale;
  return block_sparse_attention(q, k, v, refs, opt).out;
}

}  // namespace flexgen
