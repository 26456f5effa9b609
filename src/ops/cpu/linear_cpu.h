// The model's linear layer on the CPU (private to the ops CPU backend and the model):
// y = x W^T + b. bf16 and fp32 inputs and weights go through flexgen's own kernels
// (gemm_kernels.h: fp32 accumulation, for bf16 one rounding at the end; the same bits on every
// instruction-set path and for any number of rows or threads); other dtypes through at::linear.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace flexgen {

at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});
// Several linears of the same input (q/k/v, gate/up): one parallel region for all.
std::vector<at::Tensor> linear_layers(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                                      const std::vector<at::Tensor>& biases);
// The bf16 kernel itself on the current path (cpu_isa.h): x [..., K] bf16, weights [N, K] bf16
// contiguous -> [..., N] bf16 each (or the fp32 sums before that one rounding, for tests that
// compare the paths' arithmetic). std::invalid_argument for other inputs.
std::vector<at::Tensor> linear_bf16(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                                    bool round_to_bf16 = true);
// The fp32 kernel: x [..., K] fp32, weights [N, K] fp32 contiguous -> [..., N] fp32 each.
std::vector<at::Tensor> linear_f32(const at::Tensor& x, const std::vector<at::Tensor>& weights);
// Turns the bf16 and fp32 kernels off (at::linear for everything) or on again; for A/B measurements only.
void set_bf16_linear_kernels(bool enabled);

}  // namespace flexgen
