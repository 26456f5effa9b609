// The options `generate` and `debug` share (data, prompts, method, decoding),
// registered once and turned into a RunOptions once.
#pragma once

#include <CLI/CLI.hpp>

#include <stdexcept>
#include <string>

#include "flexgen/generate_run.h"
#include "flexgen/setting_error.h"

namespace flexgen::cli {

struct RunArgs {
  RunOptions run;
  std::string method = "flex";
  std::string positions = "sequential";
  std::string fusion = "generated";
  std::string indexes;
  size_t num_paraphrases = 5;
  std::string separator = "\\n\\n[SEP]\\n\\n";
  std::string stop = "eos,newline";
};

// --dataset, --data-dir, --train, --method, --num-paraphrases, --indexes, --separator,
// --few-shot(-seed), --shared-context, --chat, --positions, --fusion, --block-size,
// --weights, --max-new-tokens, --stop, --temperature, --top-k, --top-p, --seed.
void add_run_options(CLI::App& app, RunArgs& args);

// Parses and checks the text options into args.run; throws UsageError naming the flag.
void finish_run_options(RunArgs& args);

// A library error about a setting, said with the flag that gives it ("--temperature: ...").
std::string flag_message(const SettingProblem& problem);

// Runs `f`; a library error about a setting comes out as a std::runtime_error naming its flag.
template <class F>
auto with_flag_messages(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SettingProblem& p) {
    throw std::runtime_error(flag_message(p));
  }
}

}  // namespace flexgen::cli
