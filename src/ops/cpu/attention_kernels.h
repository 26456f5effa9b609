// The arithmetic of the CPU block-sparse attention kernel (private to the ops CPU backend), one
// implementation per instruction-set path, all with the SAME arithmetic, so every path gives
// bitwise the same result (the portable one is the reference).
//
// A tile's query rows live in "lanes": arrays [x][lanes] with a lane stride ldq (a multiple of
// kAttnChunk); every call works on the lane chunks [ch0, ch1). A lane's result depends on its own
// inputs only (no arithmetic across lanes), so it does not depend on the tile, the batch or the
// threads. Per lane and key run (keys j < n), in this order:
//   scores:   S[j] = sum over c < d of K[j][c] * Q[c], one fused multiply-add per c in c order,
//             starting from 0 (bf16 inputs: K and Q with the two halves of each pair swapped,
//             c = 1, 0, 3, 2, ...; that is the order AVX512_BF16's vdpbf16ps adds its exact
//             bf16 products in, so scores_bf16 equals scores on the widened, swapped values);
//   softmax:  s_j = S[j] * qmul (qmul = scale * log2 e), masked keys -> -inf;
//             mx = max_j s_j; m' = max(m, mx); ms = (m' == -inf) ? 0 : m';
//             alpha = exp2(m - ms); p_j = exp2(s_j - ms) (into S); sum = ((0 + p_0) + p_1) + ...;
//             l = fma(l, alpha, sum); m = m'; O[c] *= alpha;
//   pv:       O[c] = fma(V[j][c], p_j, O[c]) for j in order.
// exp2 is vec_math.h's (its arguments here are <= 0).
// The caller runs the kernels with denormals flushed to zero (MXCSR FTZ + DAZ, what vdpbf16ps
// does unconditionally), so every path treats tiny values alike.
#pragma once

#include <cstdint>

#include "flexgen/cpu_isa.h"

namespace flexgen::cpu {

constexpr int64_t kAttnChunk = 16;  // lanes per chunk (one AVX-512 register, two AVX2 ones)

struct AttentionKernels {
  // dst[i] = src[i] widened to fp32, i < n; swap_pairs: the halves of each pair (2t, 2t+1)
  // exchanged (n even).
  void (*widen)(const uint16_t* src, int64_t n, float* dst, bool swap_pairs);
  // ST[j][lanes] = sum_c K[j * ldk + c] * QT[c][lanes], j < n, c < d.
  void (*scores)(int64_t n, int64_t d, const float* K, int64_t ldk, const float* QT, int64_t ldq, float* ST,
                 int64_t ch0, int64_t ch1);
  // The same from raw bf16 K rows and Q packed as bf16 pairs per lane, QT2[t][lanes] = (Q[2t], Q[2t+1]);
  // d2 = d / 2. nullptr on paths without AVX512_BF16.
  void (*scores_bf16)(int64_t n, int64_t d2, const uint16_t* K, int64_t ldk, const uint32_t* QT2, int64_t ldq,
                      float* ST, int64_t ch0, int64_t ch1);
  // The online-softmax step above for keys j < n; kmask[j * nch + ch] bit i = lane 16 ch + i may
  // see key j (nullptr: every key allowed); m, l: per lane; OT [d][lanes].
  void (*softmax)(int64_t n, float qmul, float* ST, int64_t ldq, const uint16_t* kmask, int64_t nch, float* m,
                  float* l, float* OT, int64_t d, int64_t ch0, int64_t ch1);
  // OT[c][lanes] += sum_j V[j * ldv + c] * PT[j][lanes], c < d, j < n, j in order.
  void (*pv)(int64_t n, int64_t d, const float* V, int64_t ldv, const float* PT, int64_t ldq, float* OT,
             int64_t ch0, int64_t ch1);
};

// The kernels of a path (any path this build has; the caller checks the CPU can run it).
const AttentionKernels& attention_kernels(CpuIsa isa);

const AttentionKernels& attention_kernels_portable();
const AttentionKernels& attention_kernels_avx2();
const AttentionKernels& attention_kernels_avx512();
const AttentionKernels& attention_kernels_avx512bf16();

// Denormals flushed to zero (FTZ + DAZ) while an object lives, on this thread; restored after.
class FlushDenormals {
 public:
  FlushDenormals();
  ~FlushDenormals();
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned saved_ = 0;
};

}  // namespace flexgen::cpu
