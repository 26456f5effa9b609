// vec_math.h's functions for 16 fp32 lanes (AVX-512 F/BW + FMA, target attributes; include only
// from files that call them from functions compiled for AVX-512).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#if !defined(__clang__)
// GCC 12 warns about an uninitialised variable inside its own AVX-512 intrinsics (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "cpu/vec_math.h"

#define FLEXGEN_AVX512 __attribute__((target("avx512f,avx512bw,fma")))

namespace flexgen::cpu {

FLEXGEN_AVX512 inline __m512 exp2_avx512(__m512 t) {
  const __mmask16 keep = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-126.0f), _CMP_GT_OQ);
  const __mmask16 big = _mm512_cmp_ps_mask(t, _mm512_set1_ps(127.0f), _CMP_GE_OQ);
  const __m512 tc = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-126.0f)), _mm512_set1_ps(127.0f));
  const __m512 n = _mm512_roundscale_ps(tc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(tc, n);
  __m512 p = _mm512_set1_ps(kExp2Coef[0]);
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Coef[i]));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 r = _mm512_maskz_mul_ps(keep, p, _mm512_castsi512_ps(e));
  return _mm512_mask_blend_ps(big, r, _mm512_set1_ps(std::numeric_limits<float>::infinity()));
}

// 16 bf16 values widened to fp32.
FLEXGEN_AVX512 inline __m512 widen_bf16_avx512(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// 16 fp32 -> bf16 bit patterns in 32-bit lanes.
FLEXGEN_AVX512 inline __m512i round_bf16_avx512(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i bias = _mm512_add_epi32(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)),
                                        _mm512_set1_epi32(0x7FFF));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
  return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), r, _mm512_set1_epi32(0x7FC0));
}

}  // namespace flexgen::cpu

#endif
