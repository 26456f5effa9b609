// `flexgen eval`: scores a result file (ours or another pipeline's) from prediction + answers.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "flexgen/output_records.h"
#include "flexgen/scoring.h"

namespace flexgen::cli {

namespace {

struct EvalArgs {
  std::string file = "-";
  std::string by;
  std::string extract;
  bool json = false;
};

std::string ratio(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", n ? double(k) / double(n) : 0.0);
  return buf;
}

nlohmann::ordered_json summary_json(const ScoreSummary& s) {
  nlohmann::ordered_json j;
  j["n"] = s.n;
  j["correct"] = s.correct;
  j["accuracy"] = s.accuracy();
  j["correct_bidirectional"] = s.correct_bidirectional;
  j["bidirectional"] = s.bidirectional();
  j["exact_match"] = s.exact_match;
  j["exact"] = s.exact();
  return j;
}

std::string pad_left(const std::string& s, size_t width) { return s.size() >= width ? s : std::string(width - s.size(), ' ') + s; }
std::string pad_right(const std::string& s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }

std::string summary_text(const ScoreSummary& s) {
  return "n              " + std::to_string(s.n) + "\n" +                                                     //
         "accuracy       " + ratio(s.correct, s.n) + "  (" + std::to_string(s.correct) + "/" + std::to_string(s.n) + ")\n" +
         "bidirectional  " + ratio(s.correct_bidirectional, s.n) + "  (" + std::to_string(s.correct_bidirectional) + "/" +
         std::to_string(s.n) + ")\n" +
         "exact          " + ratio(s.exact_match, s.n) + "  (" + std::to_string(s.exact_match) + "/" + std::to_string(s.n) + ")\n";
}

std::string table_text(const std::map<std::string, ScoreSummary>& groups, const ScoreSummary& all) {
  size_t width = 6;
  for (const auto& [name, s] : groups) width = std::max(width, name.size());
  auto row = [&](const std::string& name, const std::string& n, const std::string& a, const std::string& b,
                 const std::string& e) {
    return pad_right(name, width) + "  " + pad_left(n, 6) + "  " + pad_left(a, 8) + "  " + pad_left(b, 13) + "  " +
           pad_left(e, 6) + "\n";
  };
  std::string out = row("method", "n", "accuracy", "bidirectional", "exact");
  auto line = [&](const std::string& name, const ScoreSummary& s) {
    return row(name, std::to_string(s.n), ratio(s.correct, s.n), ratio(s.correct_bidirectional, s.n),
               ratio(s.exact_match, s.n));
  };
  for (const auto& [name, s] : groups) out += line(name, s);
  return out + line("all", all);
}

int run_eval(const EvalArgs& a) {
  if (!a.by.empty() && a.by != "method") throw UsageError("--by: '" + a.by + "' is not a grouping (only: method)");
  std::optional<PredictionRule> rule;
  if (a.extract == "first-line") {
    rule = PredictionRule::FirstLine;
  } else if (a.extract == "first-word") {
    rule = PredictionRule::FirstWord;
  } else if (!a.extract.empty()) {
    throw UsageError("--extract: '" + a.extract + "' is not a rule (first-line or first-word)");
  }

  const std::vector<ResultRow> rows = read_result_file(a.file);
  ScoreSummary all;
  std::map<std::string, ScoreSummary> groups;
  for (const ResultRow& r : rows) {
    std::string prediction;
    if (rule)
      prediction = extract_prediction(r.generation ? *r.generation : *r.prediction, *rule);
    else
      prediction = r.prediction ? *r.prediction : extract_prediction(*r.generation, PredictionRule::FirstLine);
    const Score s = score_prediction(prediction, r.answers);
    all.add(s);
    if (!a.by.empty()) groups[r.method.empty() ? "(none)" : r.method].add(s);
  }

  if (a.json) {
    nlohmann::ordered_json j = summary_json(all);
    if (!a.by.empty()) {
      nlohmann::ordered_json by = nlohmann::ordered_json::object();
      for (const auto& [name, s] : groups) by[name] = summary_json(s);
      j["by_method"] = by;
    }
    std::cout << j.dump() << "\n";
  } else {
    std::cout << (a.by.empty() ? summary_text(all) : table_text(groups, all));
  }
  std::cout << std::flush;
  spdlog::info("scored {} rows of {}", rows.size(), a.file == "-" ? "stdin" : a.file);
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& parent) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* app = parent.add_subcommand(
      "eval",
      "Score a result file (flexgen JSONL/CSV, or a CSV/JSONL with answers and prediction or generation columns)");
  app->add_option("file", args->file, "Result file, or - for stdin")->capture_default_str();
  app->add_option("--by", args->by, "Group the summary: method");
  app->add_option("--extract", args->extract,
                  "Re-extract the prediction from the generation: first-line (WebQA) or first-word (MyriadLAMA); "
                  "default: the prediction field, else the generation's first line");
  app->add_flag("--json", args->json, "Print the summary as one JSON object");
  return Command{app, [args] { return run_eval(*args); }};
}

}  // namespace flexgen::cli
