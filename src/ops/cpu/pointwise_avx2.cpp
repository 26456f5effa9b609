// The AVX2 element-wise kernels (pointwise_kernels.h), 8 values per register; the portable
// kernel does the tail. Compiled for AVX2/FMA with target attributes, whatever the build's -march.
#include "cpu/pointwise_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include "cpu/vec_math_avx2.h"

namespace flexgen::cpu {
namespace {

FLEXGEN_AVX2 inline __m256 silu_avx2(__m256 g) {
  const __m256 e = exp2_avx2(_mm256_mul_ps(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(kLog2eF)));
  return _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

FLEXGEN_AVX2 inline __m256 bf16_as_f32(__m256i r) { return _mm256_castsi256_ps(_mm256_slli_epi32(r, 16)); }

FLEXGEN_AVX2 void silu_mul_bf16(const uint16_t* g, const uint16_t* u, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 s = bf16_as_f32(round_bf16_avx2(silu_avx2(widen_bf16_avx2(g + i))));
    const __m256i r = round_bf16_avx2(_mm256_mul_ps(s, widen_bf16_avx2(u + i)));
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
