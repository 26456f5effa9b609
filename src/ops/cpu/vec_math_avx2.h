// vec_math.h's functions for 8 fp32 lanes (AVX2 + FMA, target attributes; include only from
// files that call them from functions compiled for AVX2).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "cpu/vec_math.h"

#define FLEXGEN_AVX2 __attribute__((target("avx2,fma")))

namespace flexgen::cpu {

FLEXGEN_AVX2 inline __m256 exp2_avx2(__m256 t) {
  const __m256 keep = _mm256_cmp_ps(t, _mm256_set1_ps(-126.0f), _CMP_GT_OQ);
  const __m256 big = _mm256_cmp_ps(t, _mm256_set1_ps(127.0f), _CMP_GE_OQ);
  const __m256 tc = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f));
  const __m256 n = _mm256_round_ps(tc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(tc, n);
  __m256 p = _mm256_set1_ps(kExp2Coef[0]);
  for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2Coef[i]));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 r = _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
  return _mm256_blendv_ps(r, _mm256_set1_ps(std::numeric_limits<float>::infinity()), big);
}

// 8 bf16 values widened to fp32.
FLEXGEN_AVX2 inline __m256 widen_bf16_avx2(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 fp32 -> bf16 bit patterns in 32-bit lanes.
FLEXGEN_AVX2 inline __m256i round_bf16_avx2(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i bias = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1)),
                                        _mm256_set1_epi32(0x7FFF));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC0)), nan));
}

}  // namespace flexgen::cpu

#endif
