// Host side of the CUDA max-of-probabilities pick: the streams' rows and weights in one upload,
// the two kernels, the chunks' results in one copy back and their merge (the lowest id among the
// largest, chunks in order).
#include "cuda/max_prob_pick_cuda.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "cuda/max_prob_pick_params.h"

namespace flexgen {

std::vector<std::pair<int32_t, float>> max_prob_argmax_cuda(const at::Tensor& logits,
                                                            const std::vector<std::vector<int64_t>>& rows,
                                                            const std::vector<std::vector<double>>& weights) {
  using namespace cuda_pick;
  const int64_t S = static_cast<int64_t>(rows.size()), V = logits.size(1);
  if (S == 0) return {};
  c10::cuda::CUDAGuard guard(logits.device());
  // The distinct rows (each row's statistics once) and every stream's indices into them.
  std::map<int64_t, int32_t> slot;
  std::vector<int64_t> distinct;
  size_t most = 1;
  for (const auto& r : rows) {
    most = std::max(most, r.size());
    for (int64_t x : r)
      if (slot.emplace(x, static_cast<int32_t>(distinct.size())).second) distinct.push_back(x);
  }
  const int64_t nr = static_cast<int64_t>(distinct.size()), M = static_cast<int64_t>(most);
  // One host buffer of int64 words: rows [nr] | srow [S*M] + scount [S] (int32 pairs) | sw [S*M] (fp64).
  const int64_t n_i32 = S * M + S, i32_words = (n_i32 + 1) / 2, w_at = nr + i32_words, words = w_at + S * M;
  at::Tensor host = at::empty({words}, at::TensorOptions().dtype(at::kLong).pinned_memory(true));
  int64_t* h = host.data_ptr<int64_t>();
  std::copy(distinct.begin(), distinct.end(), h);
  auto* i32 = reinterpret_cast<int32_t*>(h + nr);
  std::fill(i32, i32 + 2 * i32_words, 0);
  auto* w = reinterpret_cast<double*>(h + w_at);
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t j = 0; j < M; ++j) {
      const bool has = static_cast<size_t>(j) < rows[s].size();
      i32[s * M + j] = has ? slot.at(rows[s][j]) : 0;
      w[s * M + j] = has ? weights[s][j] : 0.0;
    }
    i32[S * M + s] = static_cast<int32_t>(rows[s].size());
  }
  const at::Tensor dev = host.to(at::TensorOptions().device(logits.device()), /*non_blocking=*/true);
  const int32_t chunks = static_cast<int32_t>((V + kPickChunk - 1) / kPickChunk);
  at::Tensor stats = at::empty({2 * nr}, logits.options().dtype(at::kDouble));
  at::Tensor parts = at::empty({2 * S * chunks}, logits.options().dtype(at::kInt));
  MaxProbParams p{};
  p.logits = logits.data_ptr<float>();
  p.ld = logits.stride(0), p.V = V;
  p.nrows = static_cast<int32_t>(nr);
  const int64_t* d = dev.data_ptr<int64_t>();
  p.rows = d;
  p.row_max = stats.data_ptr<double>(), p.row_sum = p.row_max + nr;
  p.streams = static_cast<int32_t>(S), p.most = static_cast<int32_t>(M);
  p.srow = reinterpret_cast<const int32_t*>(d + nr), p.scount = p.srow + S * M;
  p.sw = reinterpret_cast<const double*>(d + w_at);
  p.chunks = chunks;
  p.part_val = reinterpret_cast<float*>(parts.data_ptr<int32_t>()), p.part_id = parts.data_ptr<int32_t>() + S * chunks;
  const int e = launch_max_prob_pick(p, at::cuda::getCurrentCUDAStream().stream());
  if (e != 0) throw std::runtime_error(std::string("max_prob_argmax: ") + cudaGetErrorString(static_cast<cudaError_t>(e)));
  const at::Tensor back = parts.cpu();
  const int32_t* b = back.data_ptr<int32_t>();
  std::vector<std::pair<int32_t, float>> out;
  out.reserve(static_cast<size_t>(S));
  for (int64_t s = 0; s < S; ++s) {
    float bv;
    std::memcpy(&bv, b + s * chunks, sizeof(float));
    int32_t bi = b[S * chunks + s * chunks];
    bool nan = std::isnan(bv);
    for (int32_t c = 1; c < chunks; ++c) {
      float v;
      std::memcpy(&v, b + s * chunks + c, sizeof(float));
      nan = nan || std::isnan(v);
      if (v > bv) bv = v, bi = b[S * chunks + s * chunks + c];  // chunks in order: ties keep the lower id
    }
    out.emplace_back(bi, nan ? std::nanf("") : bv);
  }
  return out;
}

}  // namespace flexgen
