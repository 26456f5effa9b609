// `flexgen merge`: the result files (and summaries) of the N shards of one run into what one
// process running every sample writes.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "flexgen/shard_merge.h"

namespace flexgen::cli {

namespace {

namespace fs = std::filesystem;

struct MergeArgs {
  std::vector<std::string> parts;
  std::vector<std::string> summaries;
  std::string output = "-";
  std::string summary;
  std::string format;
};

// Refuses to write `target` (given by `flag`) over one of the files being merged.
void check_not_an_input(const std::string& flag, const std::string& target, const MergeArgs& a) {
  std::error_code ec;
  if (target.empty() || target == "-" || !fs::exists(target, ec)) return;
  for (const auto* list : {&a.parts, &a.summaries})
    for (const std::string& input : *list)
      if (fs::exists(input, ec) && fs::equivalent(target, input, ec))
        throw UsageError(flag + " " + target + ": is one of the files being merged (" + input +
                         "); write the merged file elsewhere");
}

int run(const MergeArgs& a) {
  if (!a.summary.empty() && a.summaries.empty())
    throw UsageError("--summary needs --summaries FILE... (the summary of each shard)");
  std::optional<OutputFormat> format;
  if (!a.format.empty()) {
    try {
      format = parse_output_format(a.format);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--format: ") + e.what());
    }
  }
  check_not_an_input("--output", a.output, a);
  check_not_an_input("--summary", a.summary, a);
  if (!a.summary.empty() && a.summary == a.output) throw UsageError("--summary: must not be the --output file");

  const MergedShards m = merge_shards(a.parts, a.summaries);
  for (const std::string& note : m.notes) spdlog::warn("{}", note);
  const OutputFormat out_format = format ? *format : m.format.value_or(OutputFormat::Jsonl);
  std::string text = out_format == OutputFormat::Csv ? csv_header() : "";
  for (const OutputRecord& r : m.records) text += format_record(r, out_format);
  if (a.output == "-") {
    std::cout << text << std::flush;
    if (!std::cout) throw OutputFileError("stdout: write failed");
  } else {
    write_file_atomically(a.output, text);
  }
  if (!a.summary.empty()) write_file_atomically(a.summary, m.summary);
  spdlog::info("merged {} shards: {} rows, accuracy {:.4f} (bidirectional {:.4f}, exact {:.4f}){}{}", m.shards,
               m.records.size(), m.score.accuracy(), m.score.bidirectional(), m.score.exact(),
               a.output == "-" ? "" : " -> " + a.output, a.summary.empty() ? "" : ", summary -> " + a.summary);
  return 0;
}

}  // namespace

Command add_merge_command(CLI::App& parent) {
  auto a = std::make_shared<MergeArgs>();
  CLI::App* app = parent.add_subcommand(
      "merge", "Merge the result files (and summaries) of the N shards of one run into what one process writes");
  app->add_option("parts", a->parts,
                  "The N result files of `generate --shard I/N` (e.g. out.{rank}.jsonl), in any order")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--output,-o", a->output, "Merged results, records in dataset order (- = stdout)")
      ->capture_default_str();
  app->add_option("--format", a->format, "jsonl or csv (default: the parts' format)");
  app->add_option("--summaries", a->summaries,
                  "The N summaries of the shards (`generate --summary`), checked against the parts; "
                  "put the parts before this option or after --")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app->add_option("--summary", a->summary, "Write the merged summary here (needs --summaries)");
  return Command{app, [a] { return run(*a); }};
}

}  // namespace flexgen::cli
