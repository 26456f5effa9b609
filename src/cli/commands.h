// Subcommands of the flexgen CLI: each file adds one to the app and returns how to run it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace flexgen::cli {

// A bad flag value or combination: reported on stderr, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Command {
  CLI::App* app;
  std::function<int()> run;  // returns the exit code
};

Command add_mask_command(CLI::App& parent);
Command add_generate_command(CLI::App& parent);
Command add_tokenize_command(CLI::App& parent);
Command add_eval_command(CLI::App& parent);
Command add_debug_command(CLI::App& parent);
Command add_paraphrase_command(CLI::App& parent);
Command add_merge_command(CLI::App& parent);
Command add_doctor_command(CLI::App& parent);
// Hidden: `completion bash` prints a completion script walked from `parent`'s subcommands and options.
Command add_completion_command(CLI::App& parent);

}  // namespace flexgen::cli
