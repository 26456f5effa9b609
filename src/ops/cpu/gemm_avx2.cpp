// The AVX2 block kernels (gemm_kernels.h): the 16 lanes of an output in two 8-lane registers
// (lanes 0-7 take k's 0-15 of each run of 32, lanes 8-15 k's 16-31); the odd and even bf16 halves
// of each 32-bit lane are widened by a mask and a shift and go through two FMAs, as vdpbf16ps
// does. A run of 32 k's cut short by K is copied into a zero-padded buffer. Compiled for AVX2/FMA
// with target attributes, whatever the build's -march; called only when the CPU has them.
#include <cstring>

#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

namespace flexgen::cpu {
namespace {

#define FLEXGEN_AVX2 __attribute__((target("avx2,fma")))

// reduce_lanes (gemm_kernels.h) in registers: lanes 0-7 + lanes 8-15, then quarters, eighths, the
// last pair.
FLEXGEN_AVX2 inline float reduce_avx2(__m256 lo, __m256 hi) {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// The element types: one run of k's (32 bf16 or 16 fp32) of an MR x NR sub-block, into the
// sub-block's accumulators (two 8-lane registers per output).
struct Bf16 {
  using T = uint16_t;
  static constexpr int kRun = kChunk;
  // Lanes 0-7 take k's 0-15 of the run, lanes 8-15 k's 16-31; odd then even product.
  template <int MR, int NR>
  FLEXGEN_AVX2 static void step(const T* const* xs, const T* const* ws, __m256 (&acc)[MR][NR][2]) {
    const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
    for (int h = 0; h < 2; ++h) {
      __m256 xo[MR], xe[MR];
      for (int m = 0; m < MR; ++m) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[m] + 16 * h));
        xo[m] = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
        xe[m] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      }
      for (int n = 0; n < NR; ++n) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ws[n] + 16 * h));
        const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(v, hi));
        const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
        for (int m = 0; m < MR; ++m) {
          acc[m][n][h] = _mm256_fmadd_ps(xo[m], wo, acc[m][n][h]);
          acc[m][n][h] = _mm256_fmadd_ps(xe[m], we, acc[m][n][h]);
        }
      }
    }
  }
};

struct F32 {
  using T = float;
  static constexpr int kRun = kChunkF32;
  // Lanes 0-7 take k's 0-7 of the run, lanes 8-15 k's 8-15.
  template <int MR, int NR>
  FLEXGEN_AVX2 static void step(const T* const* xs, const T* const* ws, __m256 (&acc)[MR][NR][2]) {
    for (int h = 0; h < 2; ++h) {
      __m256 xv[MR];
      for (int m = 0; m < MR; ++m) xv[m] = _mm256_loadu_ps(xs[m] + 8 * h);
      for (int n = 0; n < NR; ++n) {
        const __m256 wv = _mm256_loadu_ps(ws[n] + 8 * h);
        for (int m = 0; m < MR; ++m) acc[m][n][h] = _mm256_fmadd_ps(xv[m], wv, acc[m][n][h]);
      }
    }
  }
};

// An MR x NR sub-block over all of K: full runs in place, a short last run from zero-padded
// copies, then each output's lane sum.
template <class E>
struct Kernel {
  using T = typename E::T;
  template <int MR, int NR>
  FLEXGEN_AVX2 static void run(const T* x, int64_t ldx, const T* w, int64_t ldw, int64_t K, float* out, int64_t ldo) {
    __m256 acc[MR][NR][2];
    for (int m = 0; m < MR; ++m)
      for (int n = 0; n < NR; ++n) acc[m][n][0] = acc[m][n][1] = _mm256_setzero_ps();
    const int64_t full = K / E::kRun * E::kRun;
    const T* xs[MR];
    const T* ws[NR];
    for (int64_t k = 0; k < full; k += E::kRun) {
      if (MR == 1) prefetch_weight_rows<NR>(w, ldw, K, k);
      for (int m = 0; m < MR; ++m) xs[m] = x + m * ldx + k;
      for (int n = 0; n < NR; ++n) ws[n] = w + n * ldw + k;
      E::template step<MR, NR>(xs, ws, acc);
    }
    if (full < K) {
      alignas(32) T xt[MR][E::kRun] = {}, wt[NR][E::kRun] = {};
      const size_t bytes = static_cast<size_t>(K - full) * sizeof(T);
      for (int m = 0; m < MR; ++m) {
        std::memcpy(xt[m], x + m * ldx + full, bytes);
        xs[m] = xt[m];
      }
      for (int n = 0; n < NR; ++n) {
        std::memcpy(wt[n], w + n * ldw + full, bytes);
        ws[n] = wt[n];
      }
      E::template step<MR, NR>(xs, ws, acc);
    }
    for (int m = 0; m < MR; ++m)
      for (int n = 0; n < NR; ++n) out[m * ldo + n] = reduce_avx2(acc[m][n][0], acc[m][n][1]);
  }
};

// 16 ymm registers: sub-blocks of at most 8 accumulators, 1 x 4 outputs for a single row (decode:
// four weight rows streamed at once) and 2 x 2 otherwise.
template <class E>
void block(const typename E::T* x, int64_t ldx, const typename E::T* w, int64_t ldw, int64_t K, int rows, int cols,
           float* out, int64_t ldo) {
  if (rows == 1) {
    FLEXGEN_BLOCK_DISPATCH(Kernel<E>::template run)
  }
  for (int m0 = 0; m0 < rows; m0 += 2)
    for (int n0 = 0; n0 < cols; n0 += 2) {
      const int r = rows - m0 < 2 ? rows - m0 : 2, c = cols - n0 < 2 ? cols - n0 : 2;
      const auto* xb = x + m0 * ldx;
      const auto* wb = w + n0 * ldw;
      float* ob = out + m0 * ldo + n0;
      [&](int rows, int cols, const typename E::T* x, const typename E::T* w, float* out) {
        FLEXGEN_BLOCK_DISPATCH(Kernel<E>::template run)
      }(r, c, xb, wb, ob);
    }
}

}  // namespace

void block_avx2(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                float* out, int64_t ldo) {
  block<Bf16>(x, ldx, w, ldw, K, rows, cols, out, ldo);
}

void block_f32_avx2(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                    float* out, int64_t ldo) {
  block<F32>(x, ldx, w, ldw, K, rows, cols, out, ldo);
}

}  // namespace flexgen::cpu

#else

namespace flexgen::cpu {
void block_avx2(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                float* out, int64_t ldo) {
  block_portable(x, ldx, w, ldw, K, rows, cols, out, ldo);
}
void block_f32_avx2(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                    float* out, int64_t ldo) {
  block_f32_portable(x, ldx, w, ldw, K, rows, cols, out, ldo);
}
}  // namespace flexgen::cpu

#endif
