// The portable attention kernels (attention_kernels.h): plain C++ with std::fma, lane by lane; the
// reference the vector paths must equal bit for bit. Also the kernel table and FlushDenormals.
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/attention_kernels.h"
#include "cpu/vec_math.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace flexgen::cpu {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void widen(const uint16_t* src, int64_t n, float* dst, bool swap_pairs) {
  if (swap_pairs) {
    for (int64_t i = 0; i + 1 < n; i += 2) {
      dst[i] = widen_bf16(src[i + 1]);
      dst[i + 1] = widen_bf16(src[i]);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = widen_bf16(src[i]);
  }
}

void scores(int64_t n, int64_t d, const float* K, int64_t ldk, const float* QT, int64_t ldq, float* ST, int64_t ch0,
            int64_t ch1) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t r = ch0 * kAttnChunk; r < ch1 * kAttnChunk; ++r) {
      float acc = 0.0f;
      for (int64_t c = 0; c < d; ++c) acc = std::fma(K[j * ldk + c], QT[c * ldq + r], acc);
      ST[j * ldq + r] = acc;
    }
}

void softmax(int64_t n, float qmul, float* ST, int64_t ldq, const uint16_t* kmask, int64_t nch, float* m, float* l,
             float* OT, int64_t d, int64_t ch0, int64_t ch1) {
  for (int64_t ch = ch0; ch < ch1; ++ch)
    for (int64_t i = 0; i < kAttnChunk; ++i) {
      const int64_t r = ch * kAttnChunk + i;
      float mx = kNegInf;
      for (int64_t j = 0; j < n; ++j) {
        float s = ST[j * ldq + r] * qmul;
        if (kmask != nullptr && ((kmask[j * nch + ch] >> i) & 1u) == 0) s = kNegInf;
        ST[j * ldq + r] = s;
        mx = s > mx ? s : mx;
      }
      const float mnew = mx > m[r] ? mx : m[r];
      const float msafe = mnew == kNegInf ? 0.0f : mnew;
      const float alpha = exp2_scalar(m[r] - msafe);
      float sum = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        const float p = exp2_scalar(ST[j * ldq + r] - msafe);
        ST[j * ldq + r] = p;
        sum = sum + p;
      }
      l[r] = std::fma(l[r], alpha, sum);
      m[r] = mnew;
      for (int64_t c = 0; c < d; ++c) OT[c * ldq + r] = OT[c * ldq + r] * alpha;
    }
}

void pv(int64_t n, int64_t d, const float* V, int64_t ldv, const float* PT, int64_t ldq, float* OT, int64_t ch0,
        int64_t ch1) {
  for (int64_t c = 0; c < d; ++c)
    for (int64_t r = ch0 * kAttnChunk; r < ch1 * kAttnChunk; ++r) {
      float acc = OT[c * ldq + r];
      for (int64_t j = 0; j < n; ++j) acc = std::fma(V[j * ldv + c], PT[j * ldq + r], acc);
      OT[c * ldq + r] = acc;
    }
}

}  // namespace

const AttentionKernels& attention_kernels_portable() {
  static const AttentionKernels k{widen, scores, nullptr, softmax, pv};
  return k;
}

const AttentionKernels& attention_kernels(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx2: return attention_kernels_avx2();
    case CpuIsa::Avx512: return attention_kernels_avx512();
    case CpuIsa::Avx512Bf16: return attention_kernels_avx512bf16();
    case CpuIsa::Portable: break;
  }
  return attention_kernels_portable();
}

#if defined(__x86_64__) || defined(__i386__)
FlushDenormals::FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }  // FTZ | DAZ
FlushDenormals::~FlushDenormals() { _mm_setcsr(saved_); }
#else
FlushDenormals::FlushDenormals() {}
FlushDenormals::~FlushDenormals() {}
#endif

}  // namespace flexgen::cpu
