// CUDA block-sparse attention benchmark: BOS + 5 isolated paraphrase segments (each sees BOS and
// itself, causal), 24 query heads / 8 KV heads, head_dim 128, bf16, batch 1, L = 640 / 4096 /
// 16384 (or the lengths given as arguments). Prints JSON on stdout: per L the kernel time of
// each kernel variant (median of CUDA-event timed runs after warm-up), the effective TFLOP/s on
// the allowed pairs, and the host cost of the block mask (build + attention mask + upload).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "flexgen/block_mask.h"
#include "cuda/block_sparse_attention_cuda.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kVariants = 10;  // kernel variants (src/ops/cuda/bsa_params.h); 6-9 (wgmma) on Hopper only

flexgen::SequenceLayout five_segments(int64_t total) {
  const int64_t rest = total - 1;
  std::vector<int64_t> lengths(5, rest / 5);
  lengths.back() += rest - 5 * (rest / 5);
  return flexgen::layout_from_lengths(lengths, /*bos=*/true, 0, /*separator_tokens=*/0, 0);
}

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Median of per-run CUDA-event times in microseconds.
template <class Fn>
double time_us(Fn&& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  cuda_check(cudaDeviceSynchronize(), "warmup");
  cudaStream_t st = at::cuda::getCurrentCUDAStream().stream();
  std::vector<cudaEvent_t> ev(2 * reps);
  for (auto& e : ev) cuda_check(cudaEventCreate(&e), "event");
  for (int i = 0; i < reps; ++i) {
    cuda_check(cudaEventRecord(ev[2 * i], st), "record");
    fn();
    cuda_check(cudaEventRecord(ev[2 * i + 1], st), "record");
  }
  cuda_check(cudaDeviceSynchronize(), "timed runs");
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    cuda_check(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]), "elapsed");
    t.push_back(ms * 1000.0);
  }
  for (auto& e : ev) cudaEventDestroy(e);
  return median(t);
}

// GPU time of one call without host launch overhead: the call captured in a CUDA graph, the
// graph replayed `reps` times between two events, mean per replay in microseconds.
template <class Fn>
double graph_us(Fn&& fn, int reps) {
  at::cuda::CUDAStream stream = at::cuda::getStreamFromPool();
  at::cuda::CUDAStreamGuard guard(stream);
  fn();  // warm-up (allocations) outside the capture
  cuda_check(cudaStreamSynchronize(stream.stream()), "graph warm-up");
  at::cuda::CUDAGraph graph;
  graph.capture_begin();
  fn();
  graph.capture_end();
  graph.replay();
  cuda_check(cudaStreamSynchronize(stream.stream()), "graph replay");
  cudaEvent_t a, b;
  cuda_check(cudaEventCreate(&a), "event");
  cuda_check(cudaEventCreate(&b), "event");
  cuda_check(cudaEventRecord(a, stream.stream()), "record");
  for (int i = 0; i < reps; ++i) graph.replay();
  cuda_check(cudaEventRecord(b, stream.stream()), "record");
  cuda_check(cudaEventSynchronize(b), "sync");
  float ms = 0;
  cuda_check(cudaEventElapsedTime(&ms, a, b), "elapsed");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms * 1000.0 / reps;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> lengths = {640, 4096, 16384};
  if (argc > 1) {
    lengths.clear();
    for (int i = 1; i < argc; ++i) lengths.push_back(std::atoll(argv[i]));
  }
  const int64_t H = 24, Hkv = 8, d = 128, block = 128;
  const at::Device dev(at::kCUDA, 0);
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, 0), "properties");
  const bool hopper = prop.major == 9 && prop.minor == 0;

  nlohmann::json out;
  out["device"] = prop.name;
  out["backend"] = flexgen::block_sparse_attention_cuda_backend();
  out["config"] = {{"heads", H}, {"kv_heads", Hkv}, {"head_dim", d}, {"dtype", "bf16"}, {"batch", 1},
                   {"block_size", block}, {"segments", 5}};
  nlohmann::json rows = nlohmann::json::array();
  at::manual_seed(0);
  for (const int64_t L : lengths) {
    const flexgen::SequenceLayout layout = five_segments(L);
    const flexgen::MaskSpec spec = flexgen::default_mask_spec(layout);

    // Host cost of the mask, per sequence: analytic block mask, per-position mask, upload.
    std::vector<double> t_build, t_mask, t_upload, t_total;
    flexgen::BlockMask bm;
    flexgen::AttentionMask mask;
    flexgen::DeviceBlockMask dm;
    for (int rep = 0; rep < 30; ++rep) {
      const auto t0 = Clock::now();
      bm = flexgen::build_block_mask(layout, spec, block);
      const auto t1 = Clock::now();
      mask = flexgen::make_attention_mask(layout, spec);
      const auto t2 = Clock::now();
      dm = flexgen::upload_block_mask(bm, mask, dev);
      cuda_check(cudaStreamSynchronize(at::cuda::getCurrentCUDAStream().stream()), "upload");
      const auto t3 = Clock::now();
      auto us = [](auto a, auto b) { return std::chrono::duration<double, std::micro>(b - a).count(); };
      t_build.push_back(us(t0, t1));
      t_mask.push_back(us(t1, t2));
      t_upload.push_back(us(t2, t3));
      t_total.push_back(us(t0, t3));
    }

    const auto opts = at::TensorOptions().dtype(at::kBFloat16).device(dev);
    at::Tensor q = at::randn({1, H, L, d}, opts), k = at::randn({1, Hkv, L, d}, opts),
               v = at::randn({1, Hkv, L, d}, opts);
    const std::vector<flexgen::DeviceMaskRef> refs{flexgen::DeviceMaskRef{&dm, 0, 0}};
    const double flops = 4.0 * static_cast<double>(bm.allowed_pairs) * H * d;
    if (std::getenv("FLEXGEN_BENCH_PROFILE") != nullptr) {  // one launch per variant, for ncu
      for (int var = 0; var < kVariants; ++var) {
        if (var >= 6 && !hopper) continue;
        setenv("FLEXGEN_CUDA_BSA_VARIANT", std::to_string(var).c_str(), 1);
        (void)flexgen::block_sparse_attention_cuda(q, k, v, refs);
      }
      unsetenv("FLEXGEN_CUDA_BSA_VARIANT");
      const std::vector<flexgen::DeviceMaskRef> drefs{flexgen::DeviceMaskRef{&dm, L - 1, 0}};
      (void)flexgen::block_sparse_attention_cuda(q.slice(2, L - 1, L), k, v, drefs);  // decode kernels
      cuda_check(cudaDeviceSynchronize(), "profile runs");
      continue;
    }
    nlohmann::json variants = nlohmann::json::object();
    double best = 1e30;
    std::string best_name;
    for (int var = 0; var < kVariants; ++var) {
      if (var >= 6 && !hopper) continue;
      setenv("FLEXGEN_CUDA_BSA_VARIANT", std::to_string(var).c_str(), 1);
      const int reps = L >= 16384 ? 30 : 100;
      const double us = time_us([&] { (void)flexgen::block_sparse_attention_cuda(q, k, v, refs); }, 5, reps);
      variants[std::to_string(var)] = {{"us", us}, {"tflops", flops / us * 1e-6}};
      if (us < best) best = us, best_name = std::to_string(var);
    }
    // The wgmma kernel's outputs against the mma.sync kernel's (the same bits by contract).
    bool wgmma_same_bits = false;
    if (hopper) {
      setenv("FLEXGEN_CUDA_BSA_VARIANT", "0", 1);
      const at::Tensor a = flexgen::block_sparse_attention_cuda(q, k, v, refs).out;
      wgmma_same_bits = true;
      for (int var = 6; var < kVariants; ++var) {
        setenv("FLEXGEN_CUDA_BSA_VARIANT", std::to_string(var).c_str(), 1);
        wgmma_same_bits = wgmma_same_bits && at::equal(a, flexgen::block_sparse_attention_cuda(q, k, v, refs).out);
      }
    }
    unsetenv("FLEXGEN_CUDA_BSA_VARIANT");
    const double us_default =
        time_us([&] { (void)flexgen::block_sparse_attention_cuda(q, k, v, refs); }, 5, L >= 16384 ? 30 : 100);
    // The same measurement again (run-to-run spread).
    const double us_default2 =
        time_us([&] { (void)flexgen::block_sparse_attention_cuda(q, k, v, refs); }, 5, L >= 16384 ? 30 : 100);
    // Decode step (Lq = 1 at the last position, whole cache).
    const std::vector<flexgen::DeviceMaskRef> drefs{flexgen::DeviceMaskRef{&dm, L - 1, 0}};
    at::Tensor q1 = q.slice(2, L - 1, L);
    const double us_decode = time_us([&] { (void)flexgen::block_sparse_attention_cuda(q1, k, v, drefs); }, 5, 100);
    const double us_decode_graph =
        graph_us([&] { (void)flexgen::block_sparse_attention_cuda(q1, k, v, drefs); }, 200);
    const double us_graph = graph_us([&] { (void)flexgen::block_sparse_attention_cuda(q, k, v, refs); },
                                     L >= 16384 ? 20 : 100);
    const auto st = flexgen::block_mask_stats(bm);
    rows.push_back({{"L", L},
                    {"ours_us", us_default},
                    {"ours_tflops", flops / us_default * 1e-6},
                    {"variants", variants},
                    {"best_variant", best_name},
                    {"wgmma_same_bits_as_mma_sync", hopper ? nlohmann::json(wgmma_same_bits) : nlohmann::json()},
                    {"decode_us", us_decode},
                    {"ours_again_us", us_default2},
                    {"decode_graph_us", us_decode_graph},
                    {"ours_graph_us", us_graph},
                    {"allowed_pairs", bm.allowed_pairs},
                    {"blocks", {{"full", st.full}, {"partial", st.partial}, {"empty", st.empty}}},
                    {"mask_build_us", median(t_build)},
                    {"attention_mask_us", median(t_mask)},
                    {"upload_us", median(t_upload)},
                    {"mask_total_us", median(t_total)}});
    std::cerr << "L " << L << ": ours " << us_default << " us, mask build+upload " << median(t_total) << " us\n";
  }
  out["rows"] = rows;
  std::cout << out.dump(2) << std::endl;
  return 0;
}
