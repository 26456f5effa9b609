// `flexgen mask --preset myriadlama`: the few-shot-sharing layout drawn without a model.
#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <algorithm>
#include <sstream>

#include "../cli/run_command.h"

using flexgen::testing::run_flexgen;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("mask_preset_" + name); }

}  // namespace

TEST(CliMaskPreset, MyriadLamaLegendAndRows) {
  const auto r = run_flexgen("mask --preset myriadlama --examples 2 --example-question 6 --example-answer 2 "
                             "--shared-context 4 --segments 5,4 --generated 2 --full --ascii",
                             tmp("full"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = lines_of(r.out);
  // BOS 0, instruction 1-4, Q1 5-10, A1 11-12, Q2 13-18, A2 19-20, S1 21-25, S2 26-29, G 30-31.
  for (const std::string& l : {"  BOS: position 0", "  Shared context: positions 1-4 (length 4)",
                               "  Few-shot 1 question: positions 5-10 (length 6)",
                               "  Few-shot 1 answer: positions 11-12 (length 2)",
                               "  Few-shot 2 question: positions 13-18 (length 6)",
                               "  Few-shot 2 answer: positions 19-20 (length 2)",
                               "  Segment 1: positions 21-25 (length 5)", "  Segment 2: positions 26-29 (length 4)",
                               "  Generation starts at position 30 (2 generated tokens)"})
    EXPECT_TRUE(has_line(lines, l)) << l << "\n" << r.out;
  // A matrix row in the seed's format (--ascii): label, position, then one cell per key 0..31.
  auto row = [](const std::string& label, int q, const std::vector<std::pair<int, int>>& visible) {
    std::string out = std::string(3 - label.size(), ' ') + label + (q < 10 ? "   " : "  ") + std::to_string(q);
    for (int k = 0; k < 32; ++k) {
      bool v = false;
      for (const auto& [a, b] : visible) v |= k >= a && k <= b;
      out += std::string("  ") + (v ? "#" : ".");
    }
    return out + " ";
  };
  // The answer of example 2 sees BOS, the instruction, its own questions and itself; not example 1.
  EXPECT_TRUE(has_line(lines, row("A2", 19, {{0, 4}, {13, 19}}))) << r.out;
  // Questions of example 2 see example 1's questions, not its answer.
  EXPECT_TRUE(has_line(lines, row("Q2", 13, {{0, 10}, {13, 13}}))) << r.out;
  // Paraphrase 2 sees the shared prefix and itself, not paraphrase 1.
  EXPECT_TRUE(has_line(lines, row("S2", 26, {{0, 20}, {26, 26}}))) << r.out;
  EXPECT_TRUE(has_line(lines, row("G0", 30, {{0, 30}}))) << r.out;
}

TEST(CliMaskPreset, BadPresetIsAUsageError) {
  const auto r = run_flexgen("mask --preset nope", tmp("bad"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--preset"), std::string::npos) << r.err;
  const auto e = run_flexgen("mask --preset myriadlama --example-answer 0", tmp("bad2"));
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.err.find("--example-answer"), std::string::npos) << e.err;
}
