// The portable block kernels (gemm_kernels.h): plain C++ with std::fma, the reference the vector
// paths must equal bit for bit.
#include <cmath>
#include <cstring>

#include "cpu/gemm_kernels.h"
#include "cpu/vec_math.h"

namespace flexgen::cpu {

void block_portable(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t K, int rows, int cols,
                    float* out, int64_t ldo) {
  for (int m = 0; m < rows; ++m) {
    for (int n = 0; n < cols; ++n) {
      const uint16_t* xr = x + m * ldx;
      const uint16_t* wr = w + n * ldw;
      float lanes[kLanes] = {};
      for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
        for (int i = 0; i < kLanes; ++i) {
          const int64_t e = k0 + 2 * i, o = e + 1;
          const float xo = o < K ? widen_bf16(xr[o]) : 0.f, wo = o < K ? widen_bf16(wr[o]) : 0.f;
          const float xe = e < K ? widen_bf16(xr[e]) : 0.f, we = e < K ? widen_bf16(wr[e]) : 0.f;
          lanes[i] = std::fma(xo, wo, lanes[i]);
          lanes[i] = std::fma(xe, we, lanes[i]);
        }
      }
      out[m * ldo + n] = reduce_lanes(lanes);
    }
  }
}

void block_f32_portable(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K, int rows, int cols,
                        float* out, int64_t ldo) {
  for (int m = 0; m < rows; ++m) {
    for (int n = 0; n < cols; ++n) {
      const float* xr = x + m * ldx;
      const float* wr = w + n * ldw;
      float lanes[kLanes] = {};
      for (int64_t k0 = 0; k0 < K; k0 += kChunkF32)
        for (int i = 0; i < kLanes; ++i) {
          const int64_t k = k0 + i;
          lanes[i] = std::fma(k < K ? xr[k] : 0.f, k < K ? wr[k] : 0.f, lanes[i]);
        }
      out[m * ldo + n] = reduce_lanes(lanes);
    }
  }
}

}  // namespace flexgen::cpu
