#include <gtest/gtest.h>

#include "../test_tmp.h"

#include "run_command.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("cli_" + name); }

// Count of lines in `text` that contain `needle`.
int count_lines_with(const std::string& text, const std::string& needle) {
  int n = 0;
  size_t at = 0;
  while ((at = text.find(needle, at)) != std::string::npos) {
    ++n;
    at += needle.size();
  }
  return n;
}

}  // namespace

TEST(CliMask, SeedExampleMatchesTheSeedDocument) {
  const auto r = run_flexgen("mask --segments 48,47,48,49,46 --generated 10", tmp("seed"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string seed = slurp(std::string(FLEXGEN_SOURCE_DIR) + "/tests/data/seed_mask_excerpt.txt");
  // The seed's first 17 lines (up to row S4 143) are a verbatim prefix of our output.
  const std::string prefix = seed.substr(0, seed.find("    ...\n"));
  EXPECT_EQ(r.out.substr(0, prefix.size()), prefix);
  for (const char* row : {" G0 238", "    239"}) {
    const size_t at = seed.find(row);
    const std::string line = seed.substr(at, seed.find('\n', at) - at + 1);
    EXPECT_NE(r.out.find(line), std::string::npos) << row;
  }
  EXPECT_NE(r.out.find("  Segment 3: positions 95-142 (length 48)\n"), std::string::npos);
  EXPECT_NE(r.out.find("Generation starts at position 238 (10 generated tokens)"), std::string::npos);
}

TEST(CliMask, DefaultsAreTheSeedExample) {
  const auto a = run_flexgen("mask", tmp("default"));
  const auto b = run_flexgen("mask --segments 48,47,48,49,46 --generated 10", tmp("explicit"));
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
}

TEST(CliMask, BadSegmentsAreUsageErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--segments 0,5", "segment 1: length 0 must be positive"},
      {"--segments 5,-3", "segment 2: length -3 must be positive"},
      {"--segments 5,abc", "'abc' is not a number"},
      {"--segments 5,,4", "segment 2 is empty"},
      {"--segments ''", "the list is empty"},
      {"--segments 4x", "'4x' is not a number"},
      {"--segments 999999,999999", "the limit is 1000000"},
      {"--segments 5 --generated -2", "--generated: -2 must not be negative"},
      {"--segments 5 --positions sideways", "--positions"},
      {"--segments 5 --image out.jpg", "must end in .svg or .png"},
      {"--segments 600 --full", "--full"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = run_flexgen("mask " + args, tmp("bad"));
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << " -> " << r.err;
    EXPECT_EQ(r.out, "") << args;
    EXPECT_EQ(count_lines_with(r.err, "error"), 1) << args << " -> " << r.err;
  }
  const auto nonnum = run_flexgen("mask --generated ten", tmp("nonnum"));
  EXPECT_EQ(nonnum.exit_code, 2);
  const auto unknown = run_flexgen("mask --no-such-flag", tmp("unknown"));
  EXPECT_EQ(unknown.exit_code, 2);
}

TEST(CliMask, OptionsShapeTheOutput) {
  const auto r = run_flexgen(
      "mask --segments 20,30 --bos --separator-tokens 3 --shared-context 10 --positions restart --generated 4 "
      "--ascii --blocks 16 --max-positions 12",
      tmp("opts"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (unsigned char c : r.out) ASSERT_LT(c, 0x80);
  EXPECT_NE(r.out.find("Showing 12 strategic positions"), std::string::npos);
  EXPECT_NE(r.out.find("  BOS: position 0\n"), std::string::npos);
  EXPECT_NE(r.out.find("  Shared context: positions 1-10 (length 10)"), std::string::npos);
  EXPECT_NE(r.out.find("  Segment 2: positions 34-63 (length 30), position ids 11-40"), std::string::npos);
  EXPECT_NE(r.out.find("Block Mask (block size 16, 5x5 blocks):"), std::string::npos);
  EXPECT_NE(r.out.find("Block mask statistics (block size 16):"), std::string::npos);
}

TEST(CliMask, WritesPictures) {
  for (const char* ext : {"svg", "png"}) {
    const std::string path = tmp(std::string("pic.") + ext);
    std::remove(path.c_str());
    const auto r = run_flexgen("mask --image '" + path + "'", tmp("pic"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GT(slurp(path).size(), 100u) << ext;
  }
}

TEST(Cli, VersionHelpAndMissingSubcommand) {
  const auto v = run_flexgen("--version", tmp("version"));
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("flexgen 0.1.0"), std::string::npos);
  EXPECT_NE(v.out.find("libtorch"), std::string::npos);
  const auto h = run_flexgen("--help", tmp("help"));
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("mask"), std::string::npos);
  const auto none = run_flexgen("", tmp("none"));
  EXPECT_EQ(none.exit_code, 2);
  const auto q = run_flexgen("-q mask --segments 0", tmp("quiet"));
  EXPECT_EQ(q.exit_code, 2);
  EXPECT_NE(q.err.find("must be positive"), std::string::npos);
}
