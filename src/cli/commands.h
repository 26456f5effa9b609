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

// A whole-number option's lower bound, checked on the text as given: CLI11 would turn "-1" into
// 18446744073709551615 for an unsigned option, and a negative --max-samples would mean "all".
// A value below it is a usage error "--few-shot: must be at least 0, got -1" (exit 2).
inline CLI::Validator at_least(long long min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        const std::string message = "must be at least " + std::to_string(min) + ", got " + text;
        try {
          size_t used = 0;
          const long long v = std::stoll(text, &used);
          if (used == text.size() && v < min) return message;
        } catch (const std::exception&) {
          // Not a number (CLI11 says so), or beyond long long: below the bound only when negative.
          if (text.find('-') != std::string::npos) return message;
        }
        return "";
      },
      "", "at_least");
}

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
