// RoPE tables on the CPU (private to the ops CPU backend and the model): cos and sin of
// position * inv_freq, computed the same way on every CPU (libm's sin/cos pick FMA or non-FMA code
// by the CPU and may differ in the last bit): the fp32 angle position * inv_freq[i] as
// transformers forms it, its cos/sin in double precision by fdlibm's argument reduction and
// kernel polynomials in plain IEEE operations, rounded to fp32, then to the model's dtype.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

namespace flexgen {

// positions int64 [B, L]; inv_freq fp32 [D / 2] -> cos, sin [B, 1, L, D] in dtype (the two halves
// of the last dimension repeat the D / 2 frequencies, as transformers' rotate_half expects).
std::pair<at::Tensor, at::Tensor> rope_tables_cpu(const at::Tensor& positions, const at::Tensor& inv_freq,
                                                  at::ScalarType dtype);

// The double-precision sin and cos used for the tables (|x| < 2^19 * pi / 2).
void rope_sincos(double x, double& s, double& c);

}  // namespace flexgen
