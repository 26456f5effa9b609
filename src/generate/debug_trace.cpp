#include "flexgen/debug_trace.h"

#include <algorithm>

#include "flexgen/text_escape.h"

namespace flexgen {

namespace {

std::string group_name(const Group& g) {
  const std::string n = std::to_string(g.index + 1);
  switch (g.kind) {
    case GroupKind::Bos: return "BOS";
    case GroupKind::Context: return "context";
    case GroupKind::Paraphrase: return "para " + n;
    case GroupKind::Separator: return "sep " + n;
    case GroupKind::Generated: return "generated";
    case GroupKind::FewShotQuestion: return "fewshot Q" + n;
    case GroupKind::FewShotAnswer: return "fewshot A" + n;
  }
  return "?";
}

template <class T>
TensorSummary summarize(const std::string& name, const std::vector<T>& values, const std::string& dtype) {
  TensorSummary t;
  t.name = name;
  t.shape = {1, static_cast<int64_t>(values.size())};
  t.dtype = dtype;
  if (!values.empty()) {
    t.min = static_cast<int64_t>(*std::min_element(values.begin(), values.end()));
    t.max = static_cast<int64_t>(*std::max_element(values.begin(), values.end()));
  }
  return t;
}

}  // namespace

SampleTrace make_sample_trace(const PreparedSample& p, const std::vector<StreamResult>& results,
                              const Tokenizer& tok, Method method, PositionMode positions, int64_t block_size,
                              uint64_t paraphrase_seed) {
  SampleTrace t;
  t.uuid = p.sample->uuid;
  t.question = p.sample->question;
  t.method = to_string(method);
  t.answers = p.sample->answers;
  t.paraphrases = p.prompts.paraphrases.texts;
  t.paraphrase_indexes = p.prompts.paraphrases.indexes;
  for (const auto& ids : p.tokens.paraphrases) t.paraphrase_tokens.push_back(static_cast<int64_t>(ids.size()));
  t.positions = positions;
  t.results = results;
  t.records = make_records(p, results, method, paraphrase_seed);
  DecodeOptions raw;
  for (const RowPlan& row : p.plan.rows) {
    const auto len = static_cast<int64_t>(row.tokens.size());
    t.row_tokens.push_back(len);
    t.row_previews.push_back(preview_text(tok.decode(row.tokens, raw), 80));
    const std::vector<int64_t> pos(row.position_ids.begin(), row.position_ids.begin() + len);
    const std::vector<int32_t> groups(row.mask.group_ids.begin(), row.mask.group_ids.begin() + len);
    t.inputs.push_back(summarize("token ids", row.tokens, "int64"));
    t.inputs.push_back(summarize("position ids", pos, "int64"));
    t.inputs.push_back(summarize("group ids", groups, "int32"));
  }
  if (!p.plan.layout) return t;

  t.separator_ids = p.tokens.separator;
  for (int32_t id : t.separator_ids) t.separator_pieces.push_back(tok.piece(id));
  // The layout with the tokens actually generated (the plan reserves max_new_tokens).
  SequenceLayout layout = *p.plan.layout;
  layout.spans.back().end = layout.generation_start + static_cast<int64_t>(results.at(0).ids.size());
  const MaskSpec& spec = p.plan.rows.at(0).mask.spec;
  t.mask = make_attention_mask(layout, spec);
  // The prefill block mask: the prompt positions, as the kernel walks them.
  SequenceLayout prompt = layout;
  prompt.spans.back().end = prompt.generation_start;
  t.blocks = build_block_mask(prompt, spec, block_size);
  t.isolation = check_isolation(prompt, *t.mask, *t.blocks);

  std::vector<int32_t> all = p.plan.rows[0].tokens;
  all.insert(all.end(), results[0].ids.begin(), results[0].ids.end());
  const std::vector<int64_t> pos = layout.position_ids(positions);
  for (const Span& s : layout.spans) {
    SegmentRow r;
    r.group = group_name(layout.groups[s.group]);
    r.start = s.start;
    r.end = s.end;
    if (s.length() > 0) {
      r.first_position = pos[s.start];
      r.last_position = pos[s.end - 1];
      r.preview = preview_text(tok.decode(std::vector<int32_t>(all.begin() + s.start, all.begin() + s.end), raw), 80);
    }
    t.segments.push_back(std::move(r));
  }
  t.layout = std::move(layout);
  return t;
}

}  // namespace flexgen
