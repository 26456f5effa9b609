// The model's linear layer on the CPU (private to the ops CPU backend and the model): y = x W^T + b.
// Few bf16 rows (decode; up to 8) go through an AVX512-BF16 GEMV kernel when the CPU has one (fp32
// accumulation, bf16 result like at::linear); everything else through at::linear.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace flexgen {

at::Tensor linear_layer(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});
// Several linears of the same input (q/k/v, gate/up): one parallel region for all.
std::vector<at::Tensor> linear_layers(const at::Tensor& x, const std::vector<at::Tensor>& weights,
                                      const std::vector<at::Tensor>& biases);
bool bf16_gemv_kernel_available();
// Turns the GEMV kernel off (at::linear everywhere) or on again; for A/B measurements.
void set_bf16_gemv_enabled(bool enabled);
// The kernel itself: x [..., K] bf16, weight [N, K] bf16 contiguous -> [..., N] bf16.
// Throws when the CPU lacks AVX512-BF16.
at::Tensor bf16_gemv(const at::Tensor& x, const at::Tensor& weight);
std::vector<at::Tensor> bf16_gemv_multi(const at::Tensor& x, const std::vector<at::Tensor>& weights);

}  // namespace flexgen
