// The AVX-512 block kernels (gemm_kernels.h): 16 fp32 lanes in one register. avx512bf16 uses
// vdpbf16ps; avx512 does the same two roundings with two FMAs on the odd and even bf16 halves of
// each 32-bit lane (widened by a mask and a shift). Compiled for these instructions with target
// attributes, whatever the build's -march; called only when the CPU has them.
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12 warns about an uninitialised variable inside its own AVX-512 intrinsics (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace flexgen::cpu {
namespace {

#define FLEXGEN_AVX512 __attribute__((target("avx512f,avx512bw,fma")))
#define FLEXGEN_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,fma")))

// reduce_lanes (gemm_kernels.h) in registers: halves, quarters, eighths, the last pair.
FLEXGEN_AVX512 inline float reduce_avx512(__m512 a) {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a),
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}
// One run of 32 k's: the odd and even bf16 halves widened, two FMAs; MASKED for a short last run.
template <int MR, int NR, bool MASKED>
FLEXGEN_AVX512 inline void step_fma(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t k,
                                    __mmask32 mask, __m512 (&acc)[MR][NR]) {
  const __m512i hi = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m512 xo[MR], xe[MR];
  for (int m = 0; m < MR; ++m) {
    const __m512i v = MASKED ? _mm512_maskz_loadu_epi16(mask, x + m * ldx + k) : _mm512_loadu_si512(x + m * ldx + k);
    xo[m] = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
    xe[m] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
  for (int n = 0; n < NR; ++n) {
    const __m512i v = MASKED ? _mm512_maskz_loadu_epi16(mask, w + n * ldw + k) : _mm512_loadu_si512(w + n * ldw + k);
    const __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi));
    const __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    for (int m = 0; m < MR; ++m) {
      acc[m][n] = _mm512_fmadd_ps(xo[m], wo, acc[m][n]);
      acc[m][n] = _mm512_fmadd_ps(xe[m], we, acc[m][n]);
    }
  }
}

template <int MR, int NR>
FLEXGEN_AVX512 void kernel_avx512(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K,
                                  float* out, int64_t ldo) {
  __m512 acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  const int64_t full = K / kChunk * kChunk;
  for (int64_t k = 0; k < full; k += kChunk) {
    if (MR == 1) prefetch_weight_rows<NR>(w, ldw, K, k);
    step_fma<MR, NR, false>(x, ldx, w, ldw, k, 0, acc);
  }
  if (full < K) step_fma<MR, NR, true>(x, ldx, w, ldw, full, static_cast<__mmask32>((1u << (K - full)) - 1u), acc);
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) out[m * ldo + n] = reduce_avx512(acc[m][n]);
}

// One run of 32 k's with vdpbf16ps; MASKED for the last run when K is not a multiple of 32.
template <int MR, int NR, bool MASKED>
FLEXGEN_AVX512BF16 inline void step_bf16(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t k,
                                         __mmask32 mask, __m512 (&acc)[MR][NR]) {
  __m512bh xv[MR];
  for (int m = 0; m < MR; ++m)
    xv[m] = (__m512bh)(MASKED ? _mm512_maskz_loadu_epi16(mask, x + m * ldx + k) : _mm512_loadu_si512(x + m * ldx + k));
  for (int n = 0; n < NR; ++n) {
    const __m512bh wv =
        (__m512bh)(MASKED ? _mm512_maskz_loadu_epi16(mask, w + n * ldw + k) : _mm512_loadu_si512(w + n * ldw + k));
    for (int m = 0; m < MR; ++m) acc[m][n] = _mm512_dpbf16_ps(acc[m][n], xv[m], wv);
  }
}

template <int MR, int NR>
FLEXGEN_AVX512BF16 void kernel_avx512bf16(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K,
                                          float* out, int64_t ldo) {
  __m512 acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  const int64_t full = K / kChunk * kChunk;
  for (int64_t k = 0; k < full; k += kChunk) {
    if (MR == 1) prefetch_weight_rows<NR>(w, ldw, K, k);
    step_bf16<MR, NR, false>(x, ldx, w, ldw, k, 0, acc);
  }
  if (full < K) step_bf16<MR, NR, true>(x, ldx, w, ldw, full, static_cast<__mmask32>((1u << (K - full)) - 1u), acc);
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) out[m * ldo + n] = reduce_avx512(acc[m][n]);
}

template <int MR, int NR>
FLEXGEN_AVX512 void kernel_f32_avx512(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, float* out,
                                      int64_t ldo) {
  __m512 acc[MR][NR];
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) acc[m][n] = _mm512_setzero_ps();
  auto step = [&](int64_t k, __mmask16 mask, bool masked) FLEXGEN_AVX512 {
    __m512 xv[MR];
    for (int m = 0; m < MR; ++m) xv[m] = masked ? _mm512_maskz_loadu_ps(mask, x + m * ldx + k) : _mm512_loadu_ps(x + m * ldx + k);
    for (int n = 0; n < NR; ++n) {
      const __m512 wv = masked ? _mm512_maskz_loadu_ps(mask, w + n * ldw + k) : _mm512_loadu_ps(w + n * ldw + k);
      for (int m = 0; m < MR; ++m) acc[m][n] = _mm512_fmadd_ps(xv[m], wv, acc[m][n]);
    }
  };
  const int64_t full = K / kChunkF32 * kChunkF32;
  for (int64_t k = 0; k < full; k += kChunkF32) {
    if (MR == 1) prefetch_weight_rows<NR>(w, ldw, K, k);
    step(k, 0, false);
  }
  if (full < K) step(full, static_cast<__mmask16>((1u << (K - full)) - 1u), true);
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) out[m * ldo + n] = reduce_avx512(acc[m][n]);
}

}  // namespace

void block_f32_avx512(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                      float* out, int64_t ldo) {
  FLEXGEN_BLOCK_DISPATCH(kernel_f32_avx512)
}

void block_avx512(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                  float* out, int64_t ldo) {
  FLEXGEN_BLOCK_DISPATCH(kernel_avx512)
}

// Up to kMaxColsWide outputs a call (block_cols): 5 and 6 columns here, 1-4 as the other paths.
void block_avx512bf16(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                      float* out, int64_t ldo) {
  if (cols > kMaxCols) {
    switch (rows * 8 + cols) {
      case 13: return kernel_avx512bf16<1, 5>(x, ldx, w, ldw, K, out, ldo);
      case 14: return kernel_avx512bf16<1, 6>(x, ldx, w, ldw, K, out, ldo);
      case 21: return kernel_avx512bf16<2, 5>(x, ldx, w, ldw, K, out, ldo);
      case 22: return kernel_avx512bf16<2, 6>(x, ldx, w, ldw, K, out, ldo);
      case 29: return kernel_avx512bf16<3, 5>(x, ldx, w, ldw, K, out, ldo);
      case 30: return kernel_avx512bf16<3, 6>(x, ldx, w, ldw, K, out, ldo);
      case 37: return kernel_avx512bf16<4, 5>(x, ldx, w, ldw, K, out, ldo);
      case 38: return kernel_avx512bf16<4, 6>(x, ldx, w, ldw, K, out, ldo);
      default: return;
    }
  }
  FLEXGEN_BLOCK_DISPATCH(kernel_avx512bf16)
}

}  // namespace flexgen::cpu

#else  // not x86-64: the portable kernel serves (cpu_isa() is never an AVX path there)

namespace flexgen::cpu {
void block_avx512(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                  float* out, int64_t ldo) {
  block_portable(x, ldx, w, ldw, K, rows, cols, out, ldo);
}
void block_avx512bf16(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                      float* out, int64_t ldo) {
  block_portable(x, ldx, w, ldw, K, rows, cols, out, ldo);
}
void block_f32_avx512(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                      float* out, int64_t ldo) {
  block_f32_portable(x, ldx, w, ldw, K, rows, cols, out, ldo);
}
}  // namespace flexgen::cpu

#endif
