// The AVX2 element-wise kernels (pointwise_kernels.h), 8 values per register; the portable
// kernel does the tail. Compiled for AVX2/FMA with target attributes, whatever the build's -march.
#include "cpu/pointwise_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

namespace flexgen::cpu {
namespace {

#define FLEXGEN_AVX2 __attribute__((target("avx2,fma")))

FLEXGEN_AVX2 inline __m256 exp_avx2(__m256 y) {
  const __m256 t = _mm256_mul_ps(y, _mm256_set1_ps(1.44269504088896341f));
  const __m256 keep = _mm256_cmp_ps(t, _mm256_set1_ps(-126.0f), _CMP_GT_OQ);
  const __m256 big = _mm256_cmp_ps(t, _mm256_set1_ps(127.0f), _CMP_GE_OQ);
  const __m256 tc = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f));
  const __m256 n = _mm256_round_ps(tc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(tc, n);
  __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 r = _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
  return _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_inff()), big);
}

FLEXGEN_AVX2 inline __m256 silu_avx2(__m256 g) {
  const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

FLEXGEN_AVX2 inline __m256 widen_avx2(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 fp32 -> bf16 bit patterns (in 32-bit lanes), nearest even, NaN -> 0x7FC0.
FLEXGEN_AVX2 inline __m256i round_bf16_avx2(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i bias = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1)),
                                        _mm256_set1_epi32(0x7FFF));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC0)), nan));
}

FLEXGEN_AVX2 inline __m256 bf16_as_f32(__m256i r) { return _mm256_castsi256_ps(_mm256_slli_epi32(r, 16)); }

FLEXGEN_AVX2 void silu_mul_bf16(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 s = bf16_as_f32(round_bf16_avx2(silu_avx2(widen_avx2(g + i))));
    const __m256i r = round_bf16_avx2(_mm256_mul_ps(s, widen_avx2(u + i)));
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xD8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(packed));
  }
  if (i < n) pointwise_kernels_portable().silu_mul_bf16(g + i, u + i, out + i, n - i);
}

FLEXGEN_AVX2 void silu_mul_f32(const float* g, const float* u, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(silu_avx2(_mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
  if (i < n) pointwise_kernels_portable().silu_mul_f32(g + i, u + i, out + i, n - i);
}

}  // namespace

const PointwiseKernels& pointwise_kernels_avx2() {
  static const PointwiseKernels k{silu_mul_bf16, silu_mul_f32};
  return k;
}

}  // namespace flexgen::cpu

#else

namespace flexgen::cpu {
const PointwiseKernels& pointwise_kernels_avx2() { return pointwise_kernels_portable(); }
}  // namespace flexgen::cpu

#endif
