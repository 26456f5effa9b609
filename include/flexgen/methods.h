// The ensemble methods of the reference pipeline, as decode plans: which rows
// (sequences) a sample needs and how its streams combine them. Pure planning;
// the decoder runs the plans.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flexgen/decode_plan.h"
#include "flexgen/layout.h"

namespace flexgen {

enum class Method { Flex, Origin, PerPrompt, Avg, Max, WeightedAvg, WeightedMax };

// generated: the first token comes from the last prompt position (the seed's rule);
// segment_logits: from the mean of the paraphrase-final logits (= the avg method's first token).
enum class Fusion { Generated, SegmentLogits };

struct MethodOptions {
  Method method = Method::Flex;
  PositionMode positions = PositionMode::Sequential;
  Fusion fusion = Fusion::Generated;
  int64_t max_new_tokens = 20;
};

// Token ids of one sample's prompt pieces.
struct SampleTokens {
  std::optional<int32_t> bos;
  std::vector<int32_t> shared_context;           // empty unless --shared-context
  // MyriadLAMA few-shot sharing (--shared-context on mask-fill records with few-shot examples):
  // shared_context's instruction / example question / example answer lengths; flex lays them out
  // as the few-shot groups (layout.h). Other methods use shared_context as a plain prefix.
  std::optional<FewShotSplit> few_shot;
  std::vector<std::vector<int32_t>> paraphrases;  // per paraphrase: the rest of its prompt
  std::vector<int32_t> separator;                 // flex only
  std::vector<double> weights;                    // weighted_* only, one per paraphrase
  // Leading tokens of every paraphrase (when shared_context is empty) that are the run's common
  // instruction + few-shot block: what the rows of different samples may share (KV store).
  int64_t common_prefix = 0;
};

struct SamplePlan {
  std::vector<RowPlan> rows;
  std::vector<StreamPlan> streams;  // per_prompt: one per paraphrase; others: one
  std::optional<SequenceLayout> layout;  // flex: the concatenated sequence
};

// Plans one sample; `seed` seeds its streams. Throws std::invalid_argument when
// the sample does not fit the method (e.g. weights missing for weighted_*).
SamplePlan plan_sample(const SampleTokens& sample, const MethodOptions& options, uint64_t seed);

Method parse_method(const std::string& name);  // flex|origin|per_prompt|avg|max|weighted_avg|weighted_max
std::string to_string(Method method);
Fusion parse_fusion(const std::string& name);  // generated|segment-logits
std::string to_string(Fusion fusion);

}  // namespace flexgen
