#include "flexgen/layout.h"

#include <algorithm>
#include <stdexcept>

namespace flexgen {

namespace {

int32_t add_group(SequenceLayout& layout, GroupKind kind, int32_t index) {
  layout.groups.push_back(Group{kind, index});
  return static_cast<int32_t>(layout.groups.size() - 1);
}

void add_span(SequenceLayout& layout, int32_t group, int64_t length) {
  const int64_t start = layout.length();
  layout.spans.push_back(Span{group, start, start + length});
}

}  // namespace

int32_t SequenceLayout::num_paraphrases() const {
  return static_cast<int32_t>(std::count_if(groups.begin(), groups.end(), [](const Group& g) {
    return g.kind == GroupKind::Paraphrase;
  }));
}

const Span& SequenceLayout::paraphrase_span(int32_t i) const {
  for (const Span& s : spans) {
    const Group& g = groups[s.group];
    if (g.kind == GroupKind::Paraphrase && g.index == i) return s;
  }
  throw std::out_of_range("layout has no paraphrase " + std::to_string(i));
}

void SequenceLayout::add_generated(int64_t n) {
  if (n < 0) throw std::invalid_argument("add_generated: negative count");
  spans.back().end += n;
}

std::vector<int32_t> SequenceLayout::group_ids() const {
  std::vector<int32_t> ids(static_cast<size_t>(length()));
  for (const Span& s : spans) std::fill(ids.begin() + s.start, ids.begin() + s.end, s.group);
  return ids;
}

std::vector<int64_t> SequenceLayout::position_ids(PositionMode mode) const {
  std::vector<int64_t> pos(static_cast<size_t>(length()));
  if (mode == PositionMode::Sequential) {
    for (int64_t i = 0; i < length(); ++i) pos[i] = i;
    return pos;
  }
  int64_t longest = 0;
  for (const Span& s : spans) {
    if (groups[s.group].kind == GroupKind::Paraphrase) longest = std::max(longest, s.length());
  }
  for (const Span& s : spans) {
    int64_t first = 0;
    switch (groups[s.group].kind) {
      case GroupKind::Bos:
      case GroupKind::Context:
      case GroupKind::FewShotQuestion:
      case GroupKind::FewShotAnswer: first = s.start; break;  // the shared prefix keeps its positions
      case GroupKind::Paraphrase:
      case GroupKind::Separator: first = context_end; break;
      case GroupKind::Generated: first = context_end + longest; break;
    }
    for (int64_t i = s.start; i < s.end; ++i) pos[i] = first + (i - s.start);
  }
  return pos;
}

void SequenceLayout::validate() const {
  if (spans.empty()) throw std::invalid_argument("layout has no spans");
  int64_t at = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    if (s.group < 0 || s.group >= static_cast<int32_t>(groups.size()))
      throw std::invalid_argument("span " + std::to_string(i) + " has an unknown group");
    if (s.start != at || s.end < s.start)
      throw std::invalid_argument("span " + std::to_string(i) + " is not contiguous");
    at = s.end;
  }
  if (groups[spans.back().group].kind != GroupKind::Generated)
    throw std::invalid_argument("the last span must be the generated group");
  if (generation_start != spans.back().start)
    throw std::invalid_argument("generation_start does not match the generated span");
  if (context_end < 0 || context_end > generation_start)
    throw std::invalid_argument("context_end is out of range");
}

ConcatResult concatenate(const ConcatInput& input) {
  if (input.paraphrases.empty()) throw std::invalid_argument("no paraphrases to concatenate");
  ConcatResult out;
  SequenceLayout& layout = out.layout;
  auto append = [&](int32_t group, const std::vector<int32_t>& ids) {
    add_span(layout, group, static_cast<int64_t>(ids.size()));
    out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
  };
  if (input.bos) append(add_group(layout, GroupKind::Bos, 0), {*input.bos});
  if (input.few_shot) {
    const FewShotSplit& f = *input.few_shot;
    if (f.questions.size() != f.answers.size() || f.instruction < 0 ||
        f.total() != static_cast<int64_t>(input.shared_context.size()))
      throw std::invalid_argument("few-shot split of " + std::to_string(f.total()) +
                                  " tokens does not fit the shared context of " +
                                  std::to_string(input.shared_context.size()));
    int64_t at = 0;
    auto piece = [&](GroupKind kind, int32_t index, int64_t n) {
      if (n <= 0 && kind != GroupKind::Context)
        throw std::invalid_argument("few-shot example " + std::to_string(index + 1) + " has an empty part");
      if (n <= 0) return;
      append(add_group(layout, kind, index),
             std::vector<int32_t>(input.shared_context.begin() + at, input.shared_context.begin() + at + n));
      at += n;
    };
    piece(GroupKind::Context, 0, f.instruction);
    for (size_t e = 0; e < f.questions.size(); ++e) {
      piece(GroupKind::FewShotQuestion, static_cast<int32_t>(e), f.questions[e]);
      piece(GroupKind::FewShotAnswer, static_cast<int32_t>(e), f.answers[e]);
    }
  } else if (!input.shared_context.empty()) {
    append(add_group(layout, GroupKind::Context, 0), input.shared_context);
  }
  layout.context_end = layout.length();
  const int32_t n = static_cast<int32_t>(input.paraphrases.size());
  for (int32_t i = 0; i < n; ++i) {
    if (input.paraphrases[i].empty())
      throw std::invalid_argument("paraphrase " + std::to_string(i) + " has no tokens");
    append(add_group(layout, GroupKind::Paraphrase, i), input.paraphrases[i]);
    if (i + 1 < n && !input.separator.empty())
      append(add_group(layout, GroupKind::Separator, i), input.separator);
  }
  layout.generation_start = layout.length();
  add_span(layout, add_group(layout, GroupKind::Generated, 0), 0);
  return out;
}

int64_t FewShotSplit::total() const {
  int64_t n = instruction;
  for (int64_t q : questions) n += q;
  for (int64_t a : answers) n += a;
  return n;
}

SequenceLayout layout_from_lengths(const std::vector<int64_t>& paraphrase_lengths, bool bos,
                                   int64_t shared_context, int64_t separator_tokens,
                                   int64_t generated) {
  if (paraphrase_lengths.empty()) throw std::invalid_argument("no segments");
  if (shared_context < 0 || separator_tokens < 0 || generated < 0)
    throw std::invalid_argument("lengths must not be negative");
  SequenceLayout layout;
  if (bos) add_span(layout, add_group(layout, GroupKind::Bos, 0), 1);
  if (shared_context > 0) add_span(layout, add_group(layout, GroupKind::Context, 0), shared_context);
  layout.context_end = layout.length();
  const int32_t n = static_cast<int32_t>(paraphrase_lengths.size());
  for (int32_t i = 0; i < n; ++i) {
    if (paraphrase_lengths[i] <= 0)
      throw std::invalid_argument("segment " + std::to_string(i + 1) + " has length " +
                                  std::to_string(paraphrase_lengths[i]) + "; lengths must be positive");
    add_span(layout, add_group(layout, GroupKind::Paraphrase, i), paraphrase_lengths[i]);
    if (i + 1 < n && separator_tokens > 0)
      add_span(layout, add_group(layout, GroupKind::Separator, i), separator_tokens);
  }
  layout.generation_start = layout.length();
  add_span(layout, add_group(layout, GroupKind::Generated, 0), generated);
  return layout;
}

SequenceLayout layout_few_shot_sharing(const FewShotSharingLengths& in) {
  if (in.paraphrases.empty()) throw std::invalid_argument("no segments");
  if (in.example_questions.size() != in.example_answers.size())
    throw std::invalid_argument("few-shot examples need one question length and one answer length each");
  if (in.instruction < 0 || in.separator_tokens < 0 || in.generated < 0)
    throw std::invalid_argument("lengths must not be negative");
  auto positive = [](int64_t v, const std::string& what) {
    if (v <= 0) throw std::invalid_argument(what + " has length " + std::to_string(v) + "; lengths must be positive");
  };
  SequenceLayout layout;
  if (in.bos) add_span(layout, add_group(layout, GroupKind::Bos, 0), 1);
  if (in.instruction > 0) add_span(layout, add_group(layout, GroupKind::Context, 0), in.instruction);
  for (size_t e = 0; e < in.example_questions.size(); ++e) {
    const int32_t idx = static_cast<int32_t>(e);
    positive(in.example_questions[e], "few-shot example " + std::to_string(e + 1) + " question");
    positive(in.example_answers[e], "few-shot example " + std::to_string(e + 1) + " answer");
    add_span(layout, add_group(layout, GroupKind::FewShotQuestion, idx), in.example_questions[e]);
    add_span(layout, add_group(layout, GroupKind::FewShotAnswer, idx), in.example_answers[e]);
  }
  layout.context_end = layout.length();
  const int32_t n = static_cast<int32_t>(in.paraphrases.size());
  for (int32_t i = 0; i < n; ++i) {
    positive(in.paraphrases[i], "segment " + std::to_string(i + 1));
    add_span(layout, add_group(layout, GroupKind::Paraphrase, i), in.paraphrases[i]);
    if (i + 1 < n && in.separator_tokens > 0)
      add_span(layout, add_group(layout, GroupKind::Separator, i), in.separator_tokens);
  }
  layout.generation_start = layout.length();
  add_span(layout, add_group(layout, GroupKind::Generated, 0), in.generated);
  return layout;
}

std::string to_string(GroupKind kind) {
  switch (kind) {
    case GroupKind::Bos: return "bos";
    case GroupKind::Context: return "context";
    case GroupKind::Paraphrase: return "paraphrase";
    case GroupKind::Separator: return "separator";
    case GroupKind::Generated: return "generated";
    case GroupKind::FewShotQuestion: return "few_shot_question";
    case GroupKind::FewShotAnswer: return "few_shot_answer";
  }
  return "?";
}

std::string to_string(PositionMode mode) {
  return mode == PositionMode::Sequential ? "sequential" : "restart";
}

PositionMode parse_position_mode(const std::string& text) {
  if (text == "sequential") return PositionMode::Sequential;
  if (text == "restart") return PositionMode::Restart;
  throw std::invalid_argument("unknown position mode '" + text + "' (expected sequential or restart)");
}

}  // namespace flexgen
