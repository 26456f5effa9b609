// The AVX-512 attention kernels (attention_kernels.h): a chunk of 16 lanes in one register,
// register-blocked products (12 rows x 32 lanes of accumulators), the exp2 of the contract;
// avx512bf16 adds scores straight from the bf16 K rows with vdpbf16ps (exact bf16 products,
// accumulated as the contract's fused multiply-adds, odd half first). Compiled with target
// attributes, whatever the build's -march; called only when the CPU has these instructions.
#include "cpu/attention_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "cpu/vec_math_avx512.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace flexgen::cpu {
namespace {

#define FLEXGEN_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,fma")))

constexpr int kMR = 12;

// C[p][lanes] (+)= sum_k A[p * ap + k * ak] * B[k * ldb + lanes], p < MR, NV chunks of 16 lanes.
template <int MR, int NV, bool ACC>
FLEXGEN_AVX512 inline void ukernel(int64_t K, const float* A, int64_t ap, int64_t ak, const float* B, int64_t ldb,
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

template <int NV, bool ACC>
FLEXGEN_AVX512 void ukernel_mr(int mr, int64_t K, const float* A, int64_t ap, int64_t ak, const float* B, int64_t ldb,
                               float* C, int64_t ldc) {
  switch (mr) {
#define FLEXGEN_ATTN_CASE(n) \
  case n: ukernel<n, NV, ACC>(K, A, ap, ak, B, ldb, C, ldc); break;
    FLEXGEN_ATTN_CASE(1) FLEXGEN_ATTN_CASE(2) FLEXGEN_ATTN_CASE(3) FLEXGEN_ATTN_CASE(4)
    FLEXGEN_ATTN_CASE(5) FLEXGEN_ATTN_CASE(6) FLEXGEN_ATTN_CASE(7) FLEXGEN_ATTN_CASE(8)
    FLEXGEN_ATTN_CASE(9) FLEXGEN_ATTN_CASE(10) FLEXGEN_ATTN_CASE(11) FLEXGEN_ATTN_CASE(12)
#undef FLEXGEN_ATTN_CASE
    default: break;
  }
}

template <bool ACC>
FLEXGEN_AVX512 void product(int64_t np, int64_t K, const float* A, int64_t ap, int64_t ak, const float* B,
                            int64_t ldb, float* C, int64_t ldc, int64_t ch0, int64_t ch1) {
  for (int64_t ch = ch0; ch < ch1;) {
    const int nv = ch1 - ch >= 2 ? 2 : 1;
    const float* Bc = B + ch * kAttnChunk;
    float* Cc = C + ch * kAttnChunk;
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

FLEXGEN_AVX512 void widen(const uint16_t* src, int64_t n, float* dst, bool swap_pairs) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    if (swap_pairs) h = _mm256_or_si256(_mm256_slli_epi32(h, 16), _mm256_srli_epi32(h, 16));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
  if (i < n) attention_kernels_portable().widen(src + i, n - i, dst + i, swap_pairs);  // i is even
}

FLEXGEN_AVX512 void scores(int64_t n, int64_t d, const float* K, int64_t ldk, const float* QT, int64_t ldq,
                           float* ST, int64_t ch0, int64_t ch1) {
  product<false>(n, d, K, ldk, 1, QT, ldq, ST, ldq, ch0, ch1);
}

FLEXGEN_AVX512 void pv(int64_t n, int64_t d, const float* V, int64_t ldv, const float* PT, int64_t ldq, float* OT,
                       int64_t ch0, int64_t ch1) {
  product<true>(d, n, V, 1, ldv, PT, ldq, OT, ldq, ch0, ch1);
}

FLEXGEN_AVX512 void softmax(int64_t n, float qmul, float* ST, int64_t ldq, const uint16_t* kmask, int64_t nch,
                            float* m, float* l, float* OT, int64_t d, int64_t ch0, int64_t ch1) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 vq = _mm512_set1_ps(qmul);
  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const int64_t r = ch * kAttnChunk;
    float* sc = ST + r;
    __m512 mx = neg_inf;
    for (int64_t j = 0; j < n; ++j) {
      __m512 s = _mm512_mul_ps(_mm512_loadu_ps(sc + j * ldq), vq);
      if (kmask != nullptr) s = _mm512_mask_blend_ps(kmask[j * nch + ch], neg_inf, s);
      _mm512_storeu_ps(sc + j * ldq, s);
      mx = _mm512_max_ps(s, mx);
    }
    const __m512 mold = _mm512_loadu_ps(m + r);
    const __m512 mnew = _mm512_max_ps(mx, mold);
    const __m512 msafe =
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(mnew, neg_inf, _CMP_EQ_OQ), mnew, _mm512_setzero_ps());
    const __m512 alpha = exp2_avx512(_mm512_sub_ps(mold, msafe));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m512 p = exp2_avx512(_mm512_sub_ps(_mm512_loadu_ps(sc + j * ldq), msafe));
      _mm512_storeu_ps(sc + j * ldq, p);
      sum = _mm512_add_ps(sum, p);
    }
    _mm512_storeu_ps(l + r, _mm512_fmadd_ps(_mm512_loadu_ps(l + r), alpha, sum));
    _mm512_storeu_ps(m + r, mnew);
    float* oc = OT + r;
    for (int64_t c = 0; c < d; ++c) _mm512_storeu_ps(oc + c * ldq, _mm512_mul_ps(_mm512_loadu_ps(oc + c * ldq), alpha));
  }
}

// ST[p][lanes] = sum_t dot2(K[p * ap + 2t .. 2t+1], QT2[t][lanes]) with vdpbf16ps.
template <int MR, int NV>
FLEXGEN_AVX512BF16 inline void ukernel_bf16(int64_t K2, const uint16_t* A, int64_t ap, const uint32_t* B, int64_t ldb,
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
FLEXGEN_AVX512BF16 void ukernel_bf16_mr(int mr, int64_t K2, const uint16_t* A, int64_t ap, const uint32_t* B,
                                        int64_t ldb, float* C, int64_t ldc) {
  switch (mr) {
#define FLEXGEN_ATTN_CASE(n) \
  case n: ukernel_bf16<n, NV>(K2, A, ap, B, ldb, C, ldc); break;
    FLEXGEN_ATTN_CASE(1) FLEXGEN_ATTN_CASE(2) FLEXGEN_ATTN_CASE(3) FLEXGEN_ATTN_CASE(4)
    FLEXGEN_ATTN_CASE(5) FLEXGEN_ATTN_CASE(6) FLEXGEN_ATTN_CASE(7) FLEXGEN_ATTN_CASE(8)
    FLEXGEN_ATTN_CASE(9) FLEXGEN_ATTN_CASE(10) FLEXGEN_ATTN_CASE(11) FLEXGEN_ATTN_CASE(12)
#undef FLEXGEN_ATTN_CASE
    default: break;
  }
}

FLEXGEN_AVX512BF16 void scores_bf16(int64_t n, int64_t d2, const uint16_t* K, int64_t ldk, const uint32_t* QT2,
                                    int64_t ldq, float* ST, int64_t ch0, int64_t ch1) {
  for (int64_t ch = ch0; ch < ch1;) {
    const int nv = ch1 - ch >= 2 ? 2 : 1;
    for (int64_t p = 0; p < n; p += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, n - p));
      if (nv == 2)
        ukernel_bf16_mr<2>(mr, d2, K + p * ldk, ldk, QT2 + ch * kAttnChunk, ldq, ST + p * ldq + ch * kAttnChunk, ldq);
      else
        ukernel_bf16_mr<1>(mr, d2, K + p * ldk, ldk, QT2 + ch * kAttnChunk, ldq, ST + p * ldq + ch * kAttnChunk, ldq);
    }
    ch += nv;
  }
}

}  // namespace

const AttentionKernels& attention_kernels_avx512() {
  static const AttentionKernels k{widen, scores, nullptr, softmax, pv};
  return k;
}

const AttentionKernels& attention_kernels_avx512bf16() {
  static const AttentionKernels k{widen, scores, scores_bf16, softmax, pv};
  return k;
}

}  // namespace flexgen::cpu

#else  // not x86-64: the portable kernels serve (cpu_isa() is never an AVX path there)

namespace flexgen::cpu {
const AttentionKernels& attention_kernels_avx512() { return attention_kernels_portable(); }
const AttentionKernels& attention_kernels_avx512bf16() { return attention_kernels_portable(); }
}  // namespace flexgen::cpu

#endif
