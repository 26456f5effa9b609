// The AVX2 attention kernels (attention_kernels.h): a chunk of 16 lanes in two 8-lane registers,
// register-blocked products (6 rows x 16 lanes of accumulators), the exp2 of the contract. Compiled
// for AVX2/FMA with target attributes, whatever the build's -march; called only when the CPU has them.
#include "cpu/attention_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "cpu/vec_math_avx2.h"

#include <algorithm>
#include <limits>

namespace flexgen::cpu {
namespace {

constexpr int kMR = 6;

// C[p][16 lanes] (+)= sum_k A[p * ap + k * ak] * B[k * ldb + lanes], p < MR.
template <int MR, bool ACC>
FLEXGEN_AVX2 inline void ukernel(int64_t K, const float* A, int64_t ap, int64_t ak, const float* B, int64_t ldb,
                                 float* C, int64_t ldc) {
  __m256 c[MR][2];
  for (int p = 0; p < MR; ++p)
    for (int v = 0; v < 2; ++v) c[p][v] = ACC ? _mm256_loadu_ps(C + p * ldc + 8 * v) : _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_loadu_ps(B + k * ldb), b1 = _mm256_loadu_ps(B + k * ldb + 8);
    const float* a = A + k * ak;
    for (int p = 0; p < MR; ++p) {
      const __m256 av = _mm256_broadcast_ss(a + p * ap);
      c[p][0] = _mm256_fmadd_ps(av, b0, c[p][0]);
      c[p][1] = _mm256_fmadd_ps(av, b1, c[p][1]);
    }
  }
  for (int p = 0; p < MR; ++p)
    for (int v = 0; v < 2; ++v) _mm256_storeu_ps(C + p * ldc + 8 * v, c[p][v]);
}

template <bool ACC>
FLEXGEN_AVX2 void product(int64_t np, int64_t K, const float* A, int64_t ap, int64_t ak, const float* B,
                          int64_t ldb, float* C, int64_t ldc, int64_t ch0, int64_t ch1) {
  for (int64_t ch = ch0; ch < ch1; ++ch) {
    const float* Bc = B + ch * kAttnChunk;
    float* Cc = C + ch * kAttnChunk;
    for (int64_t p = 0; p < np; p += kMR) {
      const float* Ap = A + p * ap;
      float* Cp = Cc + p * ldc;
      switch (static_cast<int>(std::min<int64_t>(kMR, np - p))) {
        case 1: ukernel<1, ACC>(K, Ap, ap, ak, Bc, ldb, Cp, ldc); break;
        case 2: ukernel<2, ACC>(K, Ap, ap, ak, Bc, ldb, Cp, ldc); break;
        case 3: ukernel<3, ACC>(K, Ap, ap, ak, Bc, ldb, Cp, ldc); break;
        case 4: ukernel<4, ACC>(K, Ap, ap, ak, Bc, ldb, Cp, ldc); break;
        case 5: ukernel<5, ACC>(K, Ap, ap, ak, Bc, ldb, Cp, ldc); break;
        default: ukernel<6, ACC>(K, Ap, ap, ak, Bc, ldb, Cp, ldc); break;
      }
    }
  }
}

FLEXGEN_AVX2 void widen(const uint16_t* src, int64_t n, float* dst, bool swap_pairs) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    if (swap_pairs) h = _mm_or_si128(_mm_slli_epi32(h, 16), _mm_srli_epi32(h, 16));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  }
  if (i < n) attention_kernels_portable().widen(src + i, n - i, dst + i, swap_pairs);  // i is even
}

FLEXGEN_AVX2 void scores(int64_t n, int64_t d, const float* K, int64_t ldk, const float* QT, int64_t ldq, float* ST,
                         int64_t ch0, int64_t ch1) {
  product<false>(n, d, K, ldk, 1, QT, ldq, ST, ldq, ch0, ch1);
}

FLEXGEN_AVX2 void pv(int64_t n, int64_t d, const float* V, int64_t ldv, const float* PT, int64_t ldq, float* OT,
                     int64_t ch0, int64_t ch1) {
  product<true>(d, n, V, 1, ldv, PT, ldq, OT, ldq, ch0, ch1);
}

// 8 lanes of a 16-bit lane mask as an all-ones/all-zeros vector (half 0: lanes 0-7, 1: 8-15).
FLEXGEN_AVX2 inline __m256 lane_mask(uint16_t m, int half) {
  const __m256i bits = half == 0 ? _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)
                                 : _mm256_setr_epi32(256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
  const __m256i v = _mm256_and_si256(_mm256_set1_epi32(m), bits);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(v, bits));
}

FLEXGEN_AVX2 void softmax(int64_t n, float qmul, float* ST, int64_t ldq, const uint16_t* kmask, int64_t nch,
                          float* m, float* l, float* OT, int64_t d, int64_t ch0, int64_t ch1) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256 vq = _mm256_set1_ps(qmul);
  for (int64_t ch = ch0; ch < ch1; ++ch)
    for (int half = 0; half < 2; ++half) {
      const int64_t r = ch * kAttnChunk + 8 * half;
      float* sc = ST + r;
      __m256 mx = neg_inf;
      for (int64_t j = 0; j < n; ++j) {
        __m256 s = _mm256_mul_ps(_mm256_loadu_ps(sc + j * ldq), vq);
        if (kmask != nullptr) s = _mm256_blendv_ps(neg_inf, s, lane_mask(kmask[j * nch + ch], half));
        _mm256_storeu_ps(sc + j * ldq, s);
        mx = _mm256_max_ps(s, mx);
      }
      const __m256 mold = _mm256_loadu_ps(m + r);
      const __m256 mnew = _mm256_max_ps(mx, mold);
      const __m256 msafe = _mm256_blendv_ps(mnew, _mm256_setzero_ps(), _mm256_cmp_ps(mnew, neg_inf, _CMP_EQ_OQ));
      const __m256 alpha = exp2_avx2(_mm256_sub_ps(mold, msafe));
      __m256 sum = _mm256_setzero_ps();
      for (int64_t j = 0; j < n; ++j) {
        const __m256 p = exp2_avx2(_mm256_sub_ps(_mm256_loadu_ps(sc + j * ldq), msafe));
        _mm256_storeu_ps(sc + j * ldq, p);
        sum = _mm256_add_ps(sum, p);
      }
      _mm256_storeu_ps(l + r, _mm256_fmadd_ps(_mm256_loadu_ps(l + r), alpha, sum));
      _mm256_storeu_ps(m + r, mnew);
      float* oc = OT + r;
      for (int64_t c = 0; c < d; ++c) _mm256_storeu_ps(oc + c * ldq, _mm256_mul_ps(_mm256_loadu_ps(oc + c * ldq), alpha));
    }
}

}  // namespace

const AttentionKernels& attention_kernels_avx2() {
  static const AttentionKernels k{widen, scores, nullptr, softmax, pv};
  return k;
}

}  // namespace flexgen::cpu

#else  // not x86-64: the portable kernels serve (cpu_isa() is never an AVX path there)

namespace flexgen::cpu {
const AttentionKernels& attention_kernels_avx2() { return attention_kernels_portable(); }
}  // namespace flexgen::cpu

#endif
