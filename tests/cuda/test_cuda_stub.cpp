// Builds without CUDA: the CUDA entry points exist and fail with a clear error.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <functional>
#include <set>
#include <stdexcept>
#include <string>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/cuda_device.h"
#include "cuda/cuda_graph.h"
#include "cuda/cuda_profiler.h"
#include "cuda/fused_ops_cuda.h"
#include "cuda/kernel_preload.h"
#include "cuda/mma_linear_params.h"
#include "cuda/prefill_linear_tma.h"

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
  says_no_cuda([&] { (void)rope_qkv_packed_cuda(x, x, 1, 2, x, x, 1, 1, x, x, x); }, "rope_qkv_packed_cuda");
  says_no_cuda([&] { (void)linear_cuda(x, x); }, "linear_cuda");
  says_no_cuda([&] { (void)linear_silu_mul_cuda(x, x); }, "linear_silu_mul_cuda");
  says_no_cuda([&] { (void)prefill_linear_silu_mul_cuda(x, x); }, "prefill_linear_silu_mul_cuda");
  says_no_cuda([&] { (void)linear_rope_qkv_cuda(x, x, {}, x, x, 1, 1, x, x, x); }, "linear_rope_qkv_cuda");
  says_no_cuda([] { (void)cuda_decode_epilogues_fused(1); }, "cuda_decode_epilogues_fused");
  says_no_cuda([] { CudaGraph graph(at::Device(at::kCUDA, 0), [] {}); }, "CudaGraph");
  says_no_cuda([] { (void)preload_cuda_kernels(); }, "preload_cuda_kernels");
  says_no_cuda([] { cuda_profiler_start(); }, "cuda_profiler_start");
  says_no_cuda([] { cuda_profiler_stop(); }, "cuda_profiler_stop");
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

// The TMA prefill linear's tile width (plain C++, so checked here too): a pass of one sample's
// prompt (~430 tokens, 4 row tiles) runs the 3B q|k|v projection in one wave of an H200's 132 SMs;
// long passes keep the widest tiles; a forced width and the rule before it are taken as asked.
TEST(PrefillTileWidth, OneSamplePassesFillTheSmsInOneWave) {
  using cuda_fused::prefill_tile_width;
  EXPECT_EQ(prefill_tile_width(431, 5120, 132), 160);   // 3B q|k|v: 128 CTAs (256 wide: 80)
  EXPECT_EQ(prefill_tile_width(431, 3072, 132), 128);   // o, down: 96 CTAs (the old rule's)
  EXPECT_EQ(prefill_tile_width(431, 16384, 132), 256);  // gate|up: 256 CTAs, two full waves
  EXPECT_EQ(prefill_tile_width(1500, 2048, 132), 192);  // 1B down: 132 CTAs, one wave (256: 96)
  EXPECT_EQ(prefill_tile_width(600, 5120, 132), 208);   // 3B q|k|v at 600 tokens: 125 CTAs (256: 100)
  EXPECT_EQ(prefill_tile_width(600, 16384, 132), 208);  // gate|up: 395 CTAs, three waves (160: four)
  EXPECT_EQ(prefill_tile_width(8192, 3072, 132), 256);
  EXPECT_EQ(prefill_tile_width(8192, 16384, 132), 256);
  for (const int64_t rows : {1, 77, 256, 431, 1000, 4096, 16384})
    for (const int64_t N : {64, 131, 3072, 5120, 16384}) {
      const int w = prefill_tile_width(rows, N, 132);
      const std::set<int> widths = {128, 160, 192, 208, 224, 240, 256};
      EXPECT_TRUE(widths.count(w) == 1) << rows << " x " << N << ": " << w;
      EXPECT_EQ(prefill_tile_width(rows, N, 132, 192), 192);
      const int64_t narrow = (rows + 127) / 128 * ((N + 127) / 128);
      EXPECT_EQ(prefill_tile_width(rows, N, 132, -1), narrow <= 132 ? 128 : 256) << rows << " x " << N;
      // One wave of 128-column tiles is never left for wider ones (the fewest waves, the narrowest).
      if (narrow <= 132) EXPECT_EQ(w, 128) << rows << " x " << N;
    }
  static_assert(prefill_tile_width(431, 5120, 132) == 160, "usable in constant expressions");
}
