// Sequence layout: which group each position of a paraphrase-ensemble sequence
// belongs to, built on token ids (never by re-tokenising text). Pure C++.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flexgen {

// What a group of positions is. FewShotQuestion / FewShotAnswer are the MyriadLAMA
// few-shot-sharing groups: the question lines and the answer line of one example.
enum class GroupKind : uint8_t { Bos, Context, Paraphrase, Separator, Generated, FewShotQuestion, FewShotAnswer };

// One group of the mask description. `index` is the paraphrase (or separator
// after that paraphrase) number, or the few-shot example number, 0-based; 0 for the other kinds.
struct Group {
  GroupKind kind;
  int32_t index = 0;
};

// A run of positions [start, end) belonging to one group.
struct Span {
  int32_t group;
  int64_t start;
  int64_t end;
  int64_t length() const { return end - start; }
};

enum class PositionMode { Sequential, Restart };

// Spans in order, contiguous, covering [0, length()). The generated group is
// always present (possibly empty) and is the last span.
struct SequenceLayout {
  std::vector<Group> groups;
  std::vector<Span> spans;
  int64_t generation_start = 0;  // first generated position == prompt length
  int64_t context_end = 0;       // S: end of BOS + shared context

  int64_t length() const { return spans.empty() ? 0 : spans.back().end; }
  int64_t num_generated() const { return length() - generation_start; }
  int32_t num_paraphrases() const;
  int32_t generated_group() const { return spans.back().group; }
  // Span of paraphrase i (0-based); throws std::out_of_range if absent.
  const Span& paraphrase_span(int32_t i) const;
  // Grows the generated span by n positions.
  void add_generated(int64_t n);
  // Group id of every position, length() entries.
  std::vector<int32_t> group_ids() const;
  // Position ids of every position, length() entries, in the given mode.
  std::vector<int64_t> position_ids(PositionMode mode) const;
  // Checks the invariants above; throws std::invalid_argument naming the problem.
  void validate() const;
};

// MyriadLAMA few-shot sharing of a shared context: it is [instruction][q_0][a_0]...[q_E-1][a_E-1],
// the instruction and each few-shot example's question lines and answer line, with these lengths.
struct FewShotSplit {
  int64_t instruction = 0;           // may be 0 (no instruction group)
  std::vector<int64_t> questions;    // per example, > 0
  std::vector<int64_t> answers;      // per example, > 0
  int64_t total() const;
};

// Token ids of the pieces of one ensemble prompt.
struct ConcatInput {
  std::optional<int32_t> bos;                   // prepended once when set
  std::vector<int32_t> shared_context;          // encoded once, visible to all paraphrases
  // When set, shared_context is laid out as the few-shot-sharing groups (Context for the instruction,
  // FewShotQuestion / FewShotAnswer per example; the rules in mask.cpp) instead of one Context group.
  // Its total must be shared_context's length.
  std::optional<FewShotSplit> few_shot;
  std::vector<std::vector<int32_t>> paraphrases;  // one token list per paraphrase prompt
  std::vector<int32_t> separator;               // ids inserted between paraphrases
};

struct ConcatResult {
  std::vector<int32_t> tokens;
  SequenceLayout layout;
};

// [BOS]? [context]? [p0] [sep] [p1] [sep] ... [pP-1]; empty paraphrases are
// rejected with std::invalid_argument.
ConcatResult concatenate(const ConcatInput& input);

// Layout from span lengths alone (as `flexgen mask` draws it): BOS, context
// and separator runs are optional; `generated` positions follow the prompt.
SequenceLayout layout_from_lengths(const std::vector<int64_t>& paraphrase_lengths, bool bos,
                                   int64_t shared_context, int64_t separator_tokens,
                                   int64_t generated);

// Span lengths of the MyriadLAMA few-shot-sharing layout:
// [BOS]? [instruction] ([example questions e] [example answer e])... [p0] [sep] [p1] ... [generated].
// The instruction and the examples form the shared prefix (context_end is its end).
struct FewShotSharingLengths {
  bool bos = true;
  int64_t instruction = 0;                  // 0 = no instruction group
  std::vector<int64_t> example_questions;   // per example: its question lines (> 0)
  std::vector<int64_t> example_answers;     // per example: its answer line (> 0)
  std::vector<int64_t> paraphrases;         // main-question paraphrase prompts (> 0)
  int64_t separator_tokens = 0;
  int64_t generated = 0;
};

// Builds that layout; throws std::invalid_argument on bad lengths. In restart mode the
// shared prefix keeps 0..S-1 (like the shared context) and each paraphrase restarts at S.
SequenceLayout layout_few_shot_sharing(const FewShotSharingLengths& lengths);

std::string to_string(GroupKind kind);
std::string to_string(PositionMode mode);
// Parses "sequential" or "restart"; throws std::invalid_argument otherwise.
PositionMode parse_position_mode(const std::string& text);

}  // namespace flexgen
