// The bash completion is generated from the CLI itself: build/completions/flexgen.bash is what
// `flexgen completion bash` prints, it lists every option each subcommand's --help shows, and bash
// completes with it.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "../test_tmp.h"
#include "run_command.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("completion_" + name); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Subcommand names listed by `flexgen --help`.
std::vector<std::string> subcommands() {
  const auto r = run_flexgen("--help", tmp("help"));
  std::vector<std::string> out;
  bool in_section = false;
  for (const auto& l : lines_of(r.out)) {
    if (l == "Subcommands:") {
      in_section = true;
    } else if (in_section && l.size() > 2 && l[0] == ' ' && l[2] != ' ') {
      out.push_back(l.substr(2, l.find(' ', 2) - 2));
    }
  }
  return out;
}

// Option names (-m, --model, ...) in a --help text: the first field of the lines that start with "  -".
std::vector<std::string> options_in_help(const std::string& help) {
  std::vector<std::string> out;
  for (const auto& l : lines_of(help)) {
    if (l.rfind("  -", 0) != 0) continue;
    std::stringstream names(l.substr(2, l.find(' ', 2) - 2));
    for (std::string n; std::getline(names, n, ',');) out.push_back(n);
  }
  return out;
}

// The opts="..." word list of one subcommand's arm in the script.
std::string opts_of(const std::string& script, const std::string& sub) {
  const std::string arm = "\n  " + sub + ")\n    opts=\"";
  const size_t at = script.find(arm);
  if (at == std::string::npos) return "";
  const size_t start = at + arm.size();
  return " " + script.substr(start, script.find('"', start) - start) + " ";
}

std::string complete(const std::string& words) {
  const std::string cmd = "bash -c 'source \"" + std::string(FLEXGEN_COMPLETION_FILE) + "\"; COMP_WORDS=(" + words +
                          "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _flexgen; echo \"${COMPREPLY[*]}\"'";
  const std::string out = tmp("bash.out");
  EXPECT_EQ(std::system((cmd + " >" + out).c_str()), 0);
  std::string s = slurp(out);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

TEST(Completion, BuiltScriptIsWhatTheBinaryPrints) {
  const auto r = run_flexgen("completion bash", tmp("print"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(FLEXGEN_COMPLETION_FILE), r.out);
  EXPECT_NE(r.out.find("complete -o default -F _flexgen flexgen"), std::string::npos);
  EXPECT_EQ(run_flexgen("completion zsh", tmp("zsh")).exit_code, 2);
}

TEST(Completion, EveryOptionOfEverySubcommandIsListed) {
  const std::string script = slurp(FLEXGEN_COMPLETION_FILE);
  const auto subs = subcommands();
  ASSERT_GE(subs.size(), 8u);
  for (const std::string& sub : subs) {
    EXPECT_NE(script.find(" " + sub), std::string::npos) << sub;
    const std::string opts = opts_of(script, sub);
    ASSERT_FALSE(opts.empty()) << "no arm for " << sub;
    const auto r = run_flexgen(sub + " --help", tmp("help_" + sub));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto options = options_in_help(r.out);
    EXPECT_GE(options.size(), 2u) << sub;  // at least -h, --help
    for (const std::string& o : options) EXPECT_NE(opts.find(" " + o + " "), std::string::npos) << sub << " " << o;
  }
  EXPECT_EQ(opts_of(script, "completion"), "");  // the hidden one is not offered
  EXPECT_EQ(script.find(" completion\""), std::string::npos);
}

TEST(Completion, BashCompletesSubcommandsOptionsAndChoices) {
  if (std::system("command -v bash >/dev/null 2>&1") != 0) GTEST_SKIP() << "no bash";
  EXPECT_EQ(complete("flexgen gen"), "generate");
  EXPECT_EQ(complete("flexgen generate --max-n"), "--max-new-tokens");
  EXPECT_EQ(complete("flexgen -q mask --gen"), "--generated");
  EXPECT_EQ(complete("flexgen --log-level w"), "warn");
  EXPECT_EQ(complete("flexgen doctor --ver"), "--version");
}
