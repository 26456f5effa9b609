// The AVX-512 element-wise kernels (pointwise_kernels.h), 16 values per register; the portable
// kernel does the tail. Compiled with target attributes, whatever the build's -march.
#include "cpu/pointwise_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace flexgen::cpu {
namespace {

#define FLEXGEN_AVX512 __attribute__((target("avx512f,avx512bw,fma")))

FLEXGEN_AVX512 inline __m512 exp_avx512(__m512 y) {
  const __m512 t = _mm512_mul_ps(y, _mm512_set1_ps(1.44269504088896341f));
  const __mmask16 keep = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-126.0f), _CMP_GT_OQ);
  const __mmask16 big = _mm512_cmp_ps_mask(t, _mm512_set1_ps(127.0f), _CMP_GE_OQ);
  const __m512 tc = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-126.0f)), _mm512_set1_ps(127.0f));
  const __m512 n = _mm512_roundscale_ps(tc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(tc, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 r = _mm512_maskz_mul_ps(keep, p, _mm512_castsi512_ps(e));
  return _mm512_mask_blend_ps(big, r, _mm512_set1_ps(__builtin_inff()));
}

FLEXGEN_AVX512 inline __m512 silu_avx512(__m512 g) {
  const __m512 e = exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), g));
  return _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

FLEXGEN_AVX512 inline __m512 widen_avx512(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 16 fp32 -> bf16 bit patterns (in 32-bit lanes), nearest even, NaN -> 0x7FC0.
FLEXGEN_AVX512 inline __m512i round_bf16_avx512(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i bias = _mm512_add_epi32(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)),
                                        _mm512_set1_epi32(0x7FFF));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
  return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, _mm512_set1_epi32(0x7FC0));
}

FLEXGEN_AVX512 void silu_mul_bf16(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 s = _mm512_castsi512_ps(_mm512_slli_epi32(round_bf16_avx512(silu_avx512(widen_avx512(g + i))), 16));
    const __m512i r = round_bf16_avx512(_mm512_mul_ps(s, widen_avx512(u + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtepi32_epi16(r));
  }
  if (i < n) pointwise_kernels_portable().silu_mul_bf16(g + i, u + i, out + i, n - i);
}

FLEXGEN_AVX512 void silu_mul_f32(const float* g, const float* u, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_mul_ps(silu_avx512(_mm512_loadu_ps(g + i)), _mm512_loadu_ps(u + i)));
  if (i < n) pointwise_kernels_portable().silu_mul_f32(g + i, u + i, out + i, n - i);
}

}  // namespace

const PointwiseKernels& pointwise_kernels_avx512() {
  static const PointwiseKernels k{silu_mul_bf16, silu_mul_f32};
  return k;
}

}  // namespace flexgen::cpu

#else

namespace flexgen::cpu {
const PointwiseKernels& pointwise_kernels_avx512() { return pointwise_kernels_portable(); }
}  // namespace flexgen::cpu

#endif
