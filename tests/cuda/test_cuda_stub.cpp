// Builds without CUDA: the CUDA entry points exist and fail with a clear error.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <functional>
#include <stdexcept>
#include <string>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/cuda_device.h"
#include "cuda/cuda_graph.h"
#include "cuda/fused_ops_cuda.h"
#include "cuda/mma_linear_params.h"

using namespace flexgen;

TEST(BlockSparseAttentionCudaStub, ReportsNoCuda) {
  EXPECT_FALSE(cuda_block_sparse_attention_available());
  EXPECT_NE(block_sparse_attention_cuda_backend().find("without CUDA"), std::string::npos);
  const SequenceLayout layout = layout_from_lengths({4, 4}, true, 0, 0, 0);
  const MaskSpec spec = default_mask_spec(layout);
  const BlockMask bm = build_block_mask(layout, spec, 16);
  const AttentionMask mask = make_attention_mask(layout, spec);
  try {
    (void)upload_block_mask(bm, mask, at::Device(at::kCPU));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("built without CUDA"), std::string::npos) << e.what();
  }
  at::Tensor q = at::zeros({1, 1, 9, 64}, at::kBFloat16);
  EXPECT_THROW(block_sparse_attention_cuda(q, q, q, {DeviceMaskRef{}}), std::runtime_error);
}

TEST(BlockSparseAttentionCudaStub, ModelPathEntryPointsReportNoCuda) {
  auto says_no_cuda = [](const std::function<void()>& call, const char* what) {
    try {
      call();
      ADD_FAILURE() << what << ": expected an exception";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("built without CUDA"), std::string::npos) << what << ": " << e.what();
    }
  };
  const at::Tensor x = at::zeros({2, 64}, at::kBFloat16);
  says_no_cuda([&] { (void)make_device_mask_table(2, 128, at::Device(at::kCPU)); }, "make_device_mask_table");
  says_no_cuda([&] { (void)rms_norm_cuda(x, x[0], 1e-5); }, "rms_norm_cuda");
  says_no_cuda([&] { (void)silu_mul_cuda(x); }, "silu_mul_cuda");
  says_no_cuda([&] { (void)linear_cuda(x, x); }, "linear_cuda");
  says_no_cuda([&] { (void)linear_silu_mul_cuda(x, x); }, "linear_silu_mul_cuda");
  says_no_cuda([&] { (void)linear_rope_qkv_cuda(x, x, {}, x, x, 1, 1, x, x, x); }, "linear_rope_qkv_cuda");
  says_no_cuda([] { (void)cuda_decode_epilogues_fused(1); }, "cuda_decode_epilogues_fused");
  says_no_cuda([] { CudaGraph graph(at::Device(at::kCUDA, 0), [] {}); }, "CudaGraph");
  says_no_cuda([] { bind_cuda_device(at::Device(at::kCUDA, 1)); }, "bind_cuda_device");
  // The raw launchers bench/decode_cuda calls directly.
  using cuda_fused::DType;
  says_no_cuda(
      [] { (void)cuda_fused::gemv(DType::BF16, nullptr, nullptr, nullptr, 1, 8, 8, 1, false, nullptr, false); },
      "cuda_fused::gemv");
  says_no_cuda([] { (void)cuda_fused::gemv_warps_per_column(8); }, "cuda_fused::gemv_warps_per_column");
  says_no_cuda(
      [] { (void)cuda_fused::mma_linear(DType::BF16, nullptr, nullptr, nullptr, 1, 8, 8, 1, false, nullptr, false); },
      "cuda_fused::mma_linear");
  says_no_cuda([] { (void)cuda_fused::mma_linear_k_splits(8); }, "cuda_fused::mma_linear_k_splits");
}
