// Prefill of one WebQA-style sample on a model directory: the flex sequence
// (5 paraphrase prompts in one row) vs the avg rows (5 rows), each through the
// block-sparse kernel and through the dense masked reference. Prints JSON.
//   bench_prefill MODEL_DIR [threads]
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "flexgen/block_mask.h"
#include "flexgen/decoder.h"
#include "flexgen/llama.h"
#include "flexgen/model_loader.h"
#include "flexgen/compute_device.h"
#include "flexgen/methods.h"
#include "flexgen/runtime_info.h"

using namespace flexgen;

namespace {

double median_seconds(const std::function<void()>& fn, int reps) {
  std::vector<double> t;
  fn();  // warm-up
  for (int i = 0; i < reps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Prefill of the plan's rows (left-padded like the decoder does) with or without block masks.
double time_prefill(const LlamaModel& model, const SamplePlan& plan, bool kernel, int reps) {
  int64_t lmax = 0;
  for (const RowPlan& r : plan.rows) lmax = std::max<int64_t>(lmax, static_cast<int64_t>(r.tokens.size()));
  const int64_t B = static_cast<int64_t>(plan.rows.size());
  std::vector<AttentionMask> masks;
  at::Tensor tokens = at::zeros({B, lmax}, at::kLong), pos = at::zeros({B, lmax}, at::kLong);
  for (int64_t r = 0; r < B; ++r) {
    const RowPlan& row = plan.rows[r];
    const int64_t len = static_cast<int64_t>(row.tokens.size()), pad = lmax - len;
    AttentionMask m;
    m.spec = row.mask.spec;
    m.spec.num_groups += 1;
    m.spec.visible.assign(static_cast<size_t>(m.spec.num_groups) * m.spec.num_groups, 0);
    for (int32_t q = 0; q < row.mask.spec.num_groups; ++q)
      for (int32_t k = 0; k < row.mask.spec.num_groups; ++k) m.spec.set(q, k, row.mask.spec.sees(q, k));
    m.group_ids.assign(static_cast<size_t>(pad), row.mask.spec.num_groups);
    m.group_ids.insert(m.group_ids.end(), row.mask.group_ids.begin(), row.mask.group_ids.begin() + len);
    masks.push_back(std::move(m));
    for (int64_t i = 0; i < len; ++i) {
      tokens[r][pad + i] = row.tokens[i];
      pos[r][pad + i] = row.position_ids[i];
    }
  }
  std::vector<BlockMask> blocks;
  for (const AttentionMask& m : masks) blocks.push_back(build_block_mask(m, 128));
  const BatchMask ref = kernel ? BatchMask::rows(masks, blocks) : BatchMask::rows(masks);
  return median_seconds(
      [&] {
        KVCache cache = make_kv_cache(model, B, lmax);
        llama_forward(model, cache, tokens, pos, ref, LogitsMode::Last);
      },
      reps);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_prefill MODEL_DIR [threads]\n";
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  set_cpu_threads(threads);
  const LlamaModel model = load_llama_from_directory(argv[1]);
  // A WebQA-like sample: 5 prompts of ~100 tokens (ids drawn from the vocabulary).
  SampleTokens s;
  s.bos = 0;
  at::manual_seed(1);
  for (int i = 0; i < 5; ++i) {
    const at::Tensor ids = at::randint(1, model.config.vocab_size, {96 + 4 * i}, at::kLong);
    s.paraphrases.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  }
  s.separator = {271, 58, 92, 271};
  MethodOptions flex;
  flex.method = Method::Flex;
  flex.max_new_tokens = 1;
  MethodOptions avg = flex;
  avg.method = Method::Avg;
  const SamplePlan pf = plan_sample(s, flex, 0), pa = plan_sample(s, avg, 0);
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [name, plan] : {std::pair<std::string, const SamplePlan*>{"flex", &pf}, {"avg", &pa}}) {
    int64_t tokens = 0;
    for (const RowPlan& r : plan->rows) tokens += static_cast<int64_t>(r.tokens.size());
    const double k = time_prefill(model, *plan, true, 3), d = time_prefill(model, *plan, false, 3);
    rows.push_back({{"method", name},
                    {"rows", plan->rows.size()},
                    {"tokens", tokens},
                    {"kernel_seconds", k},
                    {"dense_seconds", d},
                    {"kernel_tokens_per_second", tokens / k},
                    {"dense_over_kernel", d / k}});
  }
  std::cout << nlohmann::json({{"benchmark", "prefill_one_sample"},
                               {"model", argv[1]},
                               {"dtype", model.dtype == at::kBFloat16 ? "bf16" : "fp32"},
                               {"threads", threads},
                               {"blas", blas_library()},
                               {"results", rows}})
                   .dump(2)
            << std::endl;
  return 0;
}
