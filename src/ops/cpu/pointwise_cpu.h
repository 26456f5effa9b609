// The layers' element-wise steps on the CPU (private to the ops CPU backend and the model), with
// the same bits on every instruction-set path, for any number of rows and threads (libtorch's own
// CPU kernels change their arithmetic with the CPU's vector width):
//   rms_norm: LlamaRMSNorm, weight * round(x * (1 / sqrt(mean(x^2) + eps))), the sum of squares
//             by the linear layers' dot-product arithmetic (gemm_kernels.h), the rest in fp32;
//   silu_mul: silu(gate) * up as transformers' LlamaMLP rounds it (pointwise_kernels.h).
// bf16 or fp32 tensors (x and weight of one dtype), last dimension contiguous after .contiguous().
#pragma once

#include <ATen/core/Tensor.h>

namespace flexgen {

at::Tensor rms_norm_cpu(const at::Tensor& x, const at::Tensor& weight, double eps);
at::Tensor silu_mul_cpu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace flexgen
