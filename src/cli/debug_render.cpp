// `flexgen debug`'s views of a sample trace (see debug_render.h).
#include "debug_render.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <sstream>

#include "flexgen/debug_trace.h"
#include "flexgen/mask_view.h"
#include "flexgen/text_escape.h"
#include "flexgen/tokenizer.h"
#include "flexgen/utf8.h"

namespace flexgen::cli {

namespace {

// Terminal columns of UTF-8 text: one per character.
size_t columns(const std::string& s) { return utf8::count_chars(s); }

// The first `n` characters of `s`.
std::string take_columns(const std::string& s, size_t n) { return s.substr(0, utf8::prefix_bytes(s, n)); }

// At most `n` columns; a cut is marked with "...".
std::string clip(const std::string& s, size_t n) {
  if (columns(s) <= n) return s;
  return n <= 3 ? take_columns(s, n) : take_columns(s, n - 3) + "...";
}

// `text` cut into lines of at most `width` columns; lines after the first start with `indent`.
std::string wrap(const std::string& first, const std::string& text, const std::string& indent, size_t width) {
  std::string out = first;
  size_t col = columns(first);
  size_t i = 0;
  while (i < text.size()) {
    if (col >= width) {
      out += "\n" + indent;
      col = columns(indent);
    }
    size_t len = 1;
    while (i + len < text.size() && utf8::is_continuation(static_cast<unsigned char>(text[i + len]))) ++len;
    out.append(text, i, len);
    i += len;
    ++col;
  }
  return out + "\n";
}

// Items separated by `sep`, wrapped at item boundaries.
std::string wrap_items(const std::string& first, const std::vector<std::string>& items, const std::string& sep,
                       const std::string& indent, size_t width) {
  std::string out = first;
  size_t col = columns(first);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string item = clip(items[i], width - columns(indent));
    const std::string piece = (i == 0 ? "" : sep) + item;
    if (i > 0 && col + columns(piece) > width) {
      out += "\n" + indent + item;
      col = columns(indent) + columns(item);
    } else {
      out += piece;
      col += columns(piece);
    }
  }
  return out + "\n";
}

std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string piece_text(const Tokenizer& tok, int32_t id) {
  std::string text = printable_text(tok.token_bytes(id, false)), quoted;
  for (char c : text) quoted += c == '"' ? std::string("\\\"") : std::string(1, c);
  return "\"" + quoted + "\"";
}

std::string step_item(const Tokenizer& tok, int32_t id, float p) {
  return clip(piece_text(tok, id), 14) + fmt(" %d %.4f", id, static_cast<double>(p));
}

}  // namespace

std::string render_sample_trace(const SampleTrace& t, const Tokenizer& tok, bool verbose, size_t width) {
  std::ostringstream out;
  const std::string rule(width, '=');
  out << rule << "\n";
  out << wrap("Sample ", t.uuid + " (method " + t.method + ")", "  ", width);
  out << wrap("Question: ", printable_text(t.question), "  ", width);
  out << wrap_items("Gold answers: ", t.answers, " | ", "  ", width);
  out << "\nParaphrases (" << t.paraphrases.size() << "):\n";
  for (size_t i = 0; i < t.paraphrases.size(); ++i) {
    out << fmt("  %zu. [index %zu] %lld prompt tokens\n", i + 1, t.paraphrase_indexes[i],
               static_cast<long long>(t.paraphrase_tokens[i]));
    out << wrap("     ", take_columns(printable_text(t.paraphrases[i]), 100), "     ", width);
  }

  if (!t.layout) {
    out << "\nNo concatenated mask: method " << t.method
        << " runs each prompt as its own causal row (no separator, no segments).\n";
    for (size_t r = 0; r < t.row_tokens.size(); ++r) {
      out << fmt("  row %zu: %lld tokens\n", r, static_cast<long long>(t.row_tokens[r]));
      out << wrap("     ", t.row_previews[r], "     ", width);
    }
  } else {
    std::vector<std::string> sep;
    for (size_t i = 0; i < t.separator_ids.size(); ++i)
      sep.push_back(std::to_string(t.separator_ids[i]) + " '" + printable_text(t.separator_pieces[i]) + "' " +
                    piece_text(tok, t.separator_ids[i]));
    out << wrap_items("Separator (" + std::to_string(t.separator_ids.size()) + " tokens): ", sep, ", ", "  ", width);

    const SequenceLayout& l = *t.layout;
    out << "\nSegments (" << l.length() << " positions, generation starts at " << l.generation_start
        << ", position ids " << to_string(t.positions) << "):\n";
    out << fmt("  %-12s %-15s %6s  %s\n", "group", "[start, end)", "length", "position ids");
    for (const SegmentRow& r : t.segments) {
      const std::string range = fmt("[%lld, %lld)", static_cast<long long>(r.start), static_cast<long long>(r.end));
      const std::string ids = r.end > r.start ? fmt("%lld-%lld", static_cast<long long>(r.first_position),
                                                    static_cast<long long>(r.last_position))
                                              : "-";
      out << fmt("  %-12s %-15s %6lld  %s\n", r.group.c_str(), range.c_str(),
                 static_cast<long long>(r.end - r.start), ids.c_str());
      if (!r.preview.empty()) out << "      \"" << r.preview << "\"\n";
    }

    // The seed's matrix, with as many sampled positions as fit the width (25 when they do).
    const int64_t len = l.length();
    int64_t d = 1;
    for (int64_t v = std::max<int64_t>(len - 1, 0); v >= 10; v /= 10) ++d;
    const int64_t col_w = d <= 3 ? 3 : d + 1, row_w = std::max<int64_t>(4, d + 1);
    MaskViewOptions view;
    view.max_positions = std::max<int64_t>(1, std::min<int64_t>(25, (static_cast<int64_t>(width) - 4 - row_w) / col_w));
    out << "\n" << render_mask_matrix(l, *t.mask, view);
    out << "  Labels: S#/E# = segment start/end, G0 = generation start, B = BOS, P# = separator after\n"
           "  segment #, C/CE = shared context start/end, Q#/A# = few-shot example # question/answer\n";

    out << "\nIsolation check (prefill block mask, block size " << t.blocks->block_size << "): ";
    if (t.isolation.isolated) {
      out << "all " << t.isolation.segments << " segments isolated";
      if (t.isolation.examples > 0)
        out << "; the " << t.isolation.examples << " few-shot examples follow the few-shot rules";
      out << "\n";
    } else {
      out << "\n  LEAK: position " << t.isolation.query << " (" << t.isolation.query_group << ") can see position "
          << t.isolation.key << " (" << t.isolation.key_group << ")\n";
    }
    out << render_block_stats(*t.blocks);
  }

  if (verbose) {
    out << "\nPrefill inputs:\n";
    for (size_t i = 0; i < t.inputs.size(); ++i) {
      const TensorSummary& s = t.inputs[i];
      const std::string row = t.inputs.size() > 3 ? fmt("row %zu ", i / 3) : "";
      out << fmt("  %s%-13s shape %-12s %-6s min %lld max %lld\n", row.c_str(), s.name.c_str(),
                 shape_text(s.shape).c_str(), s.dtype.c_str(), static_cast<long long>(s.min),
                 static_cast<long long>(s.max));
    }
  }

  for (size_t s = 0; s < t.results.size(); ++s) {
    const StreamResult& r = t.results[s];
    const OutputRecord& rec = t.records.at(s);
    out << "\n";
    if (t.results.size() > 1) out << "Stream " << s + 1 << " (paraphrase " << s + 1 << "):\n";
    if (verbose) {
      out << "Generation steps (top " << (r.trace.empty() ? 0 : r.trace[0].top.size())
          << ", probabilities of the distribution the method used):\n";
      for (size_t i = 0; i < r.trace.size(); ++i) {
        const StepTrace& st = r.trace[i];
        out << fmt("  step %zu, position %lld: chosen %d ", i + 1, static_cast<long long>(st.position), st.chosen)
            << clip(piece_text(tok, st.chosen), 40) << "\n";
        std::vector<std::string> items;
        for (const auto& [id, prob] : st.top) items.push_back(step_item(tok, id, prob));
        out << wrap_items("    top: ", items, " | ", "         ", width);
        out << wrap("    text: ", "\"" + printable_text(st.text) + "\"", "          ", width);
      }
    }
    std::string ids;
    for (size_t i = 0; i < r.ids.size(); ++i) ids += (i ? " " : "") + std::to_string(r.ids[i]);
    out << wrap("Generated ids: ", ids, "  ", width);
    out << wrap("Generated text: ", "\"" + printable_text(r.text) + "\"", "  ", width);
    out << wrap("Prediction: ", "\"" + printable_text(rec.prediction) + "\"", "  ", width);
    out << "Correct: " << (rec.correct ? "yes" : "no") << " (bidirectional " << (rec.correct_bidirectional ? "yes" : "no")
        << ", exact " << (rec.exact_match ? "yes" : "no") << ")\n";
  }
  return out.str();
}

nlohmann::json sample_trace_json(const SampleTrace& t, const Tokenizer& tok) {
  nlohmann::json j;
  j["uuid"] = t.uuid;
  j["question"] = t.question;
  j["method"] = t.method;
  j["answers"] = t.answers;
  nlohmann::json paras = nlohmann::json::array();
  for (size_t i = 0; i < t.paraphrases.size(); ++i)
    paras.push_back({{"text", t.paraphrases[i]}, {"index", t.paraphrase_indexes[i]}, {"tokens", t.paraphrase_tokens[i]}});
  j["paraphrases"] = paras;
  nlohmann::json rows = nlohmann::json::array();
  for (size_t r = 0; r < t.row_tokens.size(); ++r) rows.push_back({{"tokens", t.row_tokens[r]}});
  j["rows"] = rows;
  nlohmann::json inputs = nlohmann::json::array();
  for (const TensorSummary& s : t.inputs)
    inputs.push_back({{"name", s.name}, {"shape", s.shape}, {"dtype", s.dtype}, {"min", s.min}, {"max", s.max}});
  j["prefill_inputs"] = inputs;
  if (t.layout) {
    j["separator"] = {{"ids", t.separator_ids}, {"pieces", t.separator_pieces}};
    j["positions"] = to_string(t.positions);
    j["length"] = t.layout->length();
    j["generation_start"] = t.layout->generation_start;
    nlohmann::json segs = nlohmann::json::array();
    for (const SegmentRow& r : t.segments)
      segs.push_back({{"group", r.group}, {"start", r.start}, {"end", r.end}, {"first_position", r.first_position},
                      {"last_position", r.last_position}, {"preview", r.preview}});
    j["segments"] = segs;
    const std::vector<int64_t> picks = sample_positions(*t.layout, 25);
    nlohmann::json matrix = nlohmann::json::array();
    for (int64_t q : picks) {
      std::string row;
      for (int64_t k : picks) row += t.mask->allowed(q, k) ? '1' : '0';
      matrix.push_back({{"position", q}, {"label", position_label(*t.layout, q)}, {"allowed", row}});
    }
    j["mask_sample"] = {{"positions", picks}, {"rows", matrix}};
    j["isolation"] = {{"segments", t.isolation.segments}, {"isolated", t.isolation.isolated},
                      {"few_shot_examples", t.isolation.examples}};
    if (!t.isolation.isolated)
      j["isolation"].update({{"query", t.isolation.query}, {"key", t.isolation.key},
                             {"query_segment", t.isolation.query_segment}, {"key_segment", t.isolation.key_segment},
                             {"query_group", t.isolation.query_group}, {"key_group", t.isolation.key_group}});
    const BlockMaskStats s = block_mask_stats(*t.blocks);
    j["block_mask"] = {{"block_size", t.blocks->block_size}, {"full", s.full}, {"partial", s.partial},
                       {"empty", s.empty}, {"allowed_pairs", s.allowed_pairs}, {"total_pairs", s.total_pairs},
                       {"causal_pairs", s.causal_pairs}, {"density", s.density()},
                       {"causal_fraction", s.causal_fraction()}};
  } else {
    j["mask"] = nullptr;
  }
  nlohmann::json streams = nlohmann::json::array();
  for (size_t s = 0; s < t.results.size(); ++s) {
    const StreamResult& r = t.results[s];
    const OutputRecord& rec = t.records.at(s);
    nlohmann::json steps = nlohmann::json::array();
    for (const StepTrace& st : r.trace) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, prob] : st.top)
        top.push_back({{"id", id}, {"text", tok.decode({id}, DecodeOptions{})}, {"probability", prob}});
      steps.push_back({{"position", st.position}, {"chosen", st.chosen}, {"top", top}, {"text", st.text}});
    }
    streams.push_back({{"generated_ids", r.ids}, {"generation", r.text}, {"stop", to_string(r.stop)},
                       {"prediction", rec.prediction}, {"correct", rec.correct},
                       {"correct_bidirectional", rec.correct_bidirectional}, {"exact_match", rec.exact_match},
                       {"steps", steps}});
  }
  j["streams"] = streams;
  return j;
}

}  // namespace flexgen::cli
