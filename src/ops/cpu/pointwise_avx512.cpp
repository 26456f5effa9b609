// The AVX-512 element-wise kernels (pointwise_kernels.h), 16 values per register; the portable
// kernel does the tail. Compiled with target attributes, whatever the build's -march.
#include "cpu/pointwise_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "cpu/vec_math_avx512.h"

namespace flexgen::cpu {
namespace {

FLEXGEN_AVX512 inline __m512 silu_avx512(__m512 g) {
  const __m512 e = exp2_avx512(_mm512_mul_ps(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), _mm512_set1_epi32(INT32_MIN))), _mm512_set1_ps(kLog2eF)));
  return _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

FLEXGEN_AVX512 void silu_mul_bf16(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 s = _mm512_castsi512_ps(_mm512_slli_epi32(round_bf16_avx512(silu_avx512(widen_bf16_avx512(g + i))), 16));
    const __m512i r = round_bf16_avx512(_mm512_mul_ps(s, widen_bf16_avx512(u + i)));
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
