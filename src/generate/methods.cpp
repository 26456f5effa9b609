#include "flexgen/methods.h"

#include <algorithm>
#include <stdexcept>

#include "flexgen/mask.h"

namespace flexgen {

namespace {

// [BOS]? [shared]? [paraphrase] under a causal mask, sequential positions.
RowPlan single_prompt_row(const SampleTokens& s, size_t i, int64_t max_new) {
  RowPlan row;
  if (s.bos) row.tokens.push_back(*s.bos);
  row.tokens.insert(row.tokens.end(), s.shared_context.begin(), s.shared_context.end());
  row.tokens.insert(row.tokens.end(), s.paraphrases[i].begin(), s.paraphrases[i].end());
  const int64_t total = static_cast<int64_t>(row.tokens.size()) + max_new;
  row.mask = causal_mask(total);
  row.block_sparse = true;  // causal is a block mask too; the kernel beats dense masking
  row.shared_prefix = (s.bos ? 1 : 0) + static_cast<int64_t>(s.shared_context.size()) +
                      (s.shared_context.empty() ? s.common_prefix : 0);
  row.position_ids.resize(static_cast<size_t>(total));
  for (int64_t p = 0; p < total; ++p) row.position_ids[p] = p;
  return row;
}

}  // namespace

SamplePlan plan_sample(const SampleTokens& s, const MethodOptions& o, uint64_t seed) {
  if (s.paraphrases.empty()) throw std::invalid_argument("the sample has no paraphrases");
  for (size_t i = 0; i < s.paraphrases.size(); ++i)
    if (s.paraphrases[i].empty()) throw std::invalid_argument("paraphrase " + std::to_string(i) + " has no tokens");
  const size_t n = s.paraphrases.size();
  SamplePlan plan;
  switch (o.method) {
    case Method::Flex: {
      ConcatInput in;
      in.bos = s.bos;
      in.shared_context = s.shared_context;
      in.few_shot = s.few_shot;
      in.paraphrases = s.paraphrases;
      in.separator = s.separator;
      ConcatResult c = concatenate(in);
      c.layout.add_generated(o.max_new_tokens);
      RowPlan row;
      row.tokens = std::move(c.tokens);
      row.mask = make_attention_mask(c.layout, default_mask_spec(c.layout));
      row.position_ids = c.layout.position_ids(o.positions);
      row.block_sparse = true;
      // BOS and the shared context (or paraphrase 1's instruction + few-shot): causal among themselves.
      row.shared_prefix = (s.bos ? 1 : 0) + (s.shared_context.empty() ? s.common_prefix
                                                                      : static_cast<int64_t>(s.shared_context.size()));
      // Under restart positions every paraphrase prompt starts with the run's instruction +
      // few-shot block at the same positions, seeing BOS and itself: paraphrase 1's K/V serve them
      // all (the row's last token and each paraphrase's last one stay computed).
      if (o.positions == PositionMode::Restart && s.shared_context.empty() && s.common_prefix > 0) {
        const Span& first = c.layout.paraphrase_span(0);
        for (size_t i = 1; i < n; ++i) {
          const Span& p = c.layout.paraphrase_span(static_cast<int32_t>(i));
          const int64_t len = std::min({s.common_prefix, first.length() - 1, p.length() - 1});
          if (len > 0) row.copies.push_back(SpanCopy{first.start, p.start, len});
        }
      }
      if (o.fusion == Fusion::SegmentLogits) {
        for (size_t i = 0; i < n; ++i) row.first_logit_positions.push_back(c.layout.paraphrase_span(i).end - 1);
      }
      plan.rows.push_back(std::move(row));
      plan.streams.push_back(StreamPlan{{0}, Combine::Mean, {}, seed});
      plan.layout = std::move(c.layout);
      break;
    }
    case Method::Origin:
      plan.rows.push_back(single_prompt_row(s, 0, o.max_new_tokens));
      plan.streams.push_back(StreamPlan{{0}, Combine::Mean, {}, seed});
      break;
    case Method::PerPrompt:
      for (size_t i = 0; i < n; ++i) {
        plan.rows.push_back(single_prompt_row(s, i, o.max_new_tokens));
        plan.streams.push_back(StreamPlan{{static_cast<int32_t>(i)}, Combine::Mean, {}, seed + i});
      }
      break;
    case Method::Avg:
    case Method::Max:
    case Method::WeightedAvg:
    case Method::WeightedMax: {
      const bool weighted = o.method == Method::WeightedAvg || o.method == Method::WeightedMax;
      StreamPlan stream;
      stream.combine = (o.method == Method::Avg || o.method == Method::WeightedAvg) ? Combine::Mean : Combine::MaxProb;
      stream.seed = seed;
      if (weighted) {
        if (s.weights.size() != n)
          throw std::invalid_argument("method " + to_string(o.method) + " needs one weight per paraphrase (got " +
                                      std::to_string(s.weights.size()) + " for " + std::to_string(n) + ")");
        stream.weights = s.weights;
      }
      for (size_t i = 0; i < n; ++i) {
        plan.rows.push_back(single_prompt_row(s, i, o.max_new_tokens));
        stream.rows.push_back(static_cast<int32_t>(i));
      }
      plan.streams.push_back(std::move(stream));
      break;
    }
  }
  return plan;
}

Method parse_method(const std::string& name) {
  if (name == "flex") return Method::Flex;
  if (name == "origin") return Method::Origin;
  if (name == "per_prompt") return Method::PerPrompt;
  if (name == "avg") return Method::Avg;
  if (name == "max") return Method::Max;
  if (name == "weighted_avg") return Method::WeightedAvg;
  if (name == "weighted_max") return Method::WeightedMax;
  throw std::invalid_argument("--method: unknown method '" + name +
                              "' (expected flex, origin, per_prompt, avg, max, weighted_avg or weighted_max)");
}

std::string to_string(Method method) {
  switch (method) {
    case Method::Flex: return "flex";
    case Method::Origin: return "origin";
    case Method::PerPrompt: return "per_prompt";
    case Method::Avg: return "avg";
    case Method::Max: return "max";
    case Method::WeightedAvg: return "weighted_avg";
    case Method::WeightedMax: return "weighted_max";
  }
  return "?";
}

Fusion parse_fusion(const std::string& name) {
  if (name == "generated") return Fusion::Generated;
  if (name == "segment-logits") return Fusion::SegmentLogits;
  throw std::invalid_argument("--fusion: unknown fusion '" + name + "' (expected generated or segment-logits)");
}

std::string to_string(Fusion fusion) { return fusion == Fusion::Generated ? "generated" : "segment-logits"; }

}  // namespace flexgen
