// `flexgen debug`'s views of a sample trace: text for a terminal and one JSON object.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace flexgen {
struct SampleTrace;
class Tokenizer;
}  // namespace flexgen

namespace flexgen::cli {

// The text report, every line at most `width` columns; `verbose` adds the per-step
// top tokens and the prefill tensor summaries.
std::string render_sample_trace(const SampleTrace& trace, const Tokenizer& tokenizer, bool verbose,
                                size_t width = 100);

// The whole trace as one JSON object.
nlohmann::json sample_trace_json(const SampleTrace& trace, const Tokenizer& tokenizer);

}  // namespace flexgen::cli
