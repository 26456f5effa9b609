#include "flexgen/mask_view.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace flexgen {

namespace {

int digits(int64_t v) {
  int d = 1;
  while (v >= 10) {
    v /= 10;
    ++d;
  }
  return d;
}

std::string pad_left(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string pad_right(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string fmt_double(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

}  // namespace

std::vector<int64_t> sample_positions(const SequenceLayout& layout, int64_t max_positions) {
  const int64_t len = layout.length();
  std::vector<int64_t> picks;
  if (len == 0 || max_positions <= 0) return picks;
  auto add = [&](int64_t p) {
    if (p >= 0 && p < len) picks.push_back(p);
  };
  for (const Span& s : layout.spans) {
    if (s.length() == 0) continue;
    const GroupKind kind = layout.groups[s.group].kind;
    if (kind == GroupKind::Generated) continue;
    add(s.start);
    add(s.end - 1);
    if ((kind == GroupKind::Paraphrase || kind == GroupKind::Context) && s.length() > 4) {
      add(s.start + s.length() / 3);
      add(s.start + 2 * s.length() / 3);
    }
  }
  const int64_t g = layout.generation_start;
  add(g - 1);
  for (int64_t i = 0; i < 5; ++i) {
    if (g + i < len) add(g + i);
  }
  add(len - 1);
  std::sort(picks.begin(), picks.end());
  picks.erase(std::unique(picks.begin(), picks.end()), picks.end());
  while (static_cast<int64_t>(picks.size()) < max_positions) {
    size_t best = 0;
    int64_t best_gap = 1;
    for (size_t i = 0; i + 1 < picks.size(); ++i) {
      const int64_t gap = picks[i + 1] - picks[i];
      if (gap > best_gap) {
        best_gap = gap;
        best = i;
      }
    }
    if (best_gap <= 1) break;
    picks.insert(picks.begin() + best + 1, picks[best] + best_gap / 2);
  }
  if (static_cast<int64_t>(picks.size()) > max_positions) picks.resize(max_positions);
  return picks;
}

std::string position_label(const SequenceLayout& layout, int64_t pos) {
  for (const Span& s : layout.spans) {
    if (pos < s.start || pos >= s.end) continue;
    const Group& g = layout.groups[s.group];
    const std::string n = std::to_string(g.index + 1);
    switch (g.kind) {
      case GroupKind::Bos: return "B";
      case GroupKind::Context: return pos == s.start ? "C" : pos == s.end - 1 ? "CE" : "";
      case GroupKind::Paraphrase: return pos == s.start ? "S" + n : pos == s.end - 1 ? "E" + n : "";
      case GroupKind::Separator: return pos == s.start ? "P" + n : "";
      case GroupKind::Generated: return pos == s.start ? "G0" : "";
      case GroupKind::FewShotQuestion: return pos == s.start ? "Q" + n : "";
      case GroupKind::FewShotAnswer: return pos == s.start ? "A" + n : "";
    }
  }
  return "";
}

std::string render_mask_matrix(const SequenceLayout& layout, const AttentionMask& mask,
                               const MaskViewOptions& options) {
  const int64_t len = layout.length();
  std::vector<int64_t> pos;
  if (options.full) {
    if (len > kMaxFullMatrix)
      throw std::invalid_argument("--full: the sequence has " + std::to_string(len) +
                                  " positions; the whole matrix is drawn only up to " +
                                  std::to_string(kMaxFullMatrix) + " (use --max-positions or --image)");
    for (int64_t i = 0; i < len; ++i) pos.push_back(i);
  } else {
    pos = sample_positions(layout, options.max_positions);
  }
  const char* yes = options.ascii ? "#" : "\u25A0";
  const char* no = options.ascii ? "." : "\u00B7";
  const int d = digits(std::max<int64_t>(len - 1, 0));
  const size_t col_w = d <= 3 ? 3 : static_cast<size_t>(d) + 1;
  const size_t row_w = std::max(4, d + 1);

  std::ostringstream out;
  out << "Attention Mask Visualization:\n\n";
  out << "Mask Matrix (" << len << "x" << len << "):\n";
  out << "  " << (options.ascii ? "" : "\u2705 ");
  if (static_cast<int64_t>(pos.size()) == len) {
    out << "Showing all " << len << " positions\n";
  } else {
    out << "Showing " << pos.size() << " strategic positions (including segment boundaries)\n";
  }
  out << pad_right("  Q\\KV", 3 + row_w);
  for (int64_t k : pos) out << pad_left(std::to_string(k), col_w);
  out << "\n";
  const std::string cell_pad(col_w - 1, ' ');
  for (int64_t q : pos) {
    out << pad_left(position_label(layout, q), 3) << pad_left(std::to_string(q), row_w);
    for (int64_t k : pos) out << cell_pad << (mask.allowed(q, k) ? yes : no);
    out << " \n";
  }
  return out.str();
}

std::string render_legend(const SequenceLayout& layout, bool ascii, PositionMode positions) {
  std::ostringstream out;
  out << "\n  Legend: " << (ascii ? "# = can attend, . = cannot attend" : "\u25A0 = can attend, \u00B7 = cannot attend")
      << "\n          S# = segment start, E# = segment end, G0 = generation start";
  bool has_bos = false, has_ctx = false, has_sep = false, has_few_shot = false;
  for (const Group& g : layout.groups) {
    has_bos |= g.kind == GroupKind::Bos;
    has_ctx |= g.kind == GroupKind::Context;
    has_sep |= g.kind == GroupKind::Separator;
    has_few_shot |= g.kind == GroupKind::FewShotQuestion || g.kind == GroupKind::FewShotAnswer;
  }
  std::vector<std::string> extra;
  if (has_bos) extra.push_back("B = BOS");
  if (has_ctx) extra.push_back("C/CE = shared context start/end");
  if (has_sep) extra.push_back("P# = separator after segment #");
  if (has_few_shot) extra.push_back("Q#/A# = few-shot example # question/answer");
  for (size_t i = 0; i < extra.size(); ++i) out << (i == 0 ? "\n          " : ", ") << extra[i];
  out << "\n\n";
  const std::vector<int64_t> pos_ids = layout.position_ids(positions);
  for (const Span& s : layout.spans) {
    const Group& g = layout.groups[s.group];
    std::string range = "positions " + std::to_string(s.start) + "-" + std::to_string(s.end - 1) +
                        " (length " + std::to_string(s.length()) + ")";
    if (positions == PositionMode::Restart && s.length() > 0)
      range += ", position ids " + std::to_string(pos_ids[s.start]) + "-" + std::to_string(pos_ids[s.end - 1]);
    switch (g.kind) {
      case GroupKind::Bos: out << "  BOS: position " << s.start << "\n"; break;
      case GroupKind::Context: out << "  Shared context: " << range << "\n"; break;
      case GroupKind::Paraphrase: out << "  Segment " << g.index + 1 << ": " << range << "\n"; break;
      case GroupKind::Separator: out << "  Separator " << g.index + 1 << ": " << range << "\n"; break;
      case GroupKind::Generated: break;
      case GroupKind::FewShotQuestion: out << "  Few-shot " << g.index + 1 << " question: " << range << "\n"; break;
      case GroupKind::FewShotAnswer: out << "  Few-shot " << g.index + 1 << " answer: " << range << "\n"; break;
    }
  }
  out << "  Generation starts at position " << layout.generation_start;
  if (positions == PositionMode::Restart && layout.num_generated() > 0)
    out << " (position id " << pos_ids[layout.generation_start] << ")";
  out << " (" << layout.num_generated() << " generated tokens)\n";
  return out.str();
}

std::string render_block_view(const BlockMask& blocks, bool ascii) {
  constexpr int64_t kMaxBlocks = 256;
  if (blocks.num_q_blocks > kMaxBlocks || blocks.num_kv_blocks > kMaxBlocks)
    throw std::invalid_argument("--blocks: " + std::to_string(blocks.num_q_blocks) + "x" +
                                std::to_string(blocks.num_kv_blocks) + " blocks are too many to draw (max " +
                                std::to_string(kMaxBlocks) + " per side); use a larger block size");
  const char* sym_full = ascii ? "#" : "\u25A0";
  const char* sym_partial = ascii ? "+" : "\u25A7";
  const char* sym_empty = ascii ? "." : "\u00B7";
  const int d = digits(std::max<int64_t>(blocks.num_kv_blocks - 1, 0));
  const size_t col_w = static_cast<size_t>(std::max(3, d + 1));
  std::ostringstream out;
  out << "Block Mask (block size " << blocks.block_size << ", " << blocks.num_q_blocks << "x"
      << blocks.num_kv_blocks << " blocks):\n";
  out << "  " << sym_full << " = full (no per-element check), " << sym_partial << " = partial, " << sym_empty
      << " = empty (skipped)\n";
  out << pad_right("  Q\\KV", 7);
  for (int64_t k = 0; k < blocks.num_kv_blocks; ++k) out << pad_left(std::to_string(k), col_w);
  out << "\n";
  const std::string cell_pad(col_w - 1, ' ');
  for (int64_t q = 0; q < blocks.num_q_blocks; ++q) {
    out << pad_left(std::to_string(q), 7);
    for (int64_t k = 0; k < blocks.num_kv_blocks; ++k) {
      const BlockClass c = blocks.classify(q, k);
      out << cell_pad << (c == BlockClass::Full ? sym_full : c == BlockClass::Partial ? sym_partial : sym_empty);
    }
    out << " \n";
  }
  return out.str();
}

std::string render_block_stats(const BlockMask& blocks) {
  const BlockMaskStats s = block_mask_stats(blocks);
  const int64_t pairs = s.full + s.partial + s.empty;
  std::ostringstream out;
  out << "Block mask statistics (block size " << blocks.block_size << "):\n";
  out << "  blocks: " << s.full << " full, " << s.partial << " partial, " << s.empty << " empty of " << pairs
      << " (" << fmt_double(pairs ? 100.0 * (s.full + s.partial) / pairs : 0.0, 1) << "% visited)\n";
  out << "  allowed pairs: " << s.allowed_pairs << " of " << s.total_pairs << " (density "
      << fmt_double(s.density(), 4) << "); " << fmt_double(100.0 * s.causal_fraction(), 1) << "% of the "
      << s.causal_pairs << " causal pairs\n";
  return out.str();
}

}  // namespace flexgen
