#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <fstream>

#include "run_command.h"

using flexgen::testing::run_flexgen;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("cli_eval_" + name); }

std::string write(const std::string& name, const std::string& text) {
  const std::string path = tmp(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Four rows: flex right (answer inside), flex wrong, avg exact, avg only bidirectional.
const char* kRows =
    "{\"uuid\":\"a\",\"method\":\"flex\",\"answers\":[\"Japanese yen\",\"yen\"],\"prediction\":\"The Yen.\",\"correct\":false}\n"
    "{\"uuid\":\"b\",\"method\":\"flex\",\"answers\":[\"Canberra\"],\"prediction\":\"Sydney\"}\n"
    "\n"
    "{\"uuid\":\"a\",\"method\":\"avg\",\"answers\":[\"Japanese yen\"],\"generation\":\" japanese YEN\\nQ: more\"}\n"
    "{\"uuid\":\"b\",\"method\":\"avg\",\"answers\":[\"Mount Everest\"],\"prediction\":\"Everest\"}\n";

}  // namespace

TEST(CliEval, SummaryOfOurJsonl) {
  const auto r = run_flexgen("eval '" + write("rows.jsonl", kRows) + "'", tmp("summary"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "n              4\n"
            "accuracy       0.5000  (2/4)\n"
            "bidirectional  0.7500  (3/4)\n"
            "exact          0.2500  (1/4)\n");
}

TEST(CliEval, ByMethodTableAndStdin) {
  const auto r = run_flexgen("-q eval --by method < '" + write("rows_stdin.jsonl", kRows) + "'", tmp("by"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "method       n  accuracy  bidirectional   exact\n"
            "avg          2    0.5000         1.0000  0.5000\n"
            "flex         2    0.5000         0.5000  0.0000\n"
            "all          4    0.5000         0.7500  0.2500\n");
  EXPECT_EQ(r.err, "");
}

TEST(CliEval, Json) {
  const auto r = run_flexgen("eval --json --by method '" + write("rows_json.jsonl", kRows) + "'", tmp("json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"n\":4,\"correct\":2,\"accuracy\":0.5,\"correct_bidirectional\":3,\"bidirectional\":0.75,"
            "\"exact_match\":1,\"exact\":0.25,\"by_method\":{"
            "\"avg\":{\"n\":2,\"correct\":1,\"accuracy\":0.5,\"correct_bidirectional\":2,\"bidirectional\":1.0,"
            "\"exact_match\":1,\"exact\":0.5},"
            "\"flex\":{\"n\":2,\"correct\":1,\"accuracy\":0.5,\"correct_bidirectional\":1,\"bidirectional\":0.5,"
            "\"exact_match\":0,\"exact\":0.0}}}\n");
}

TEST(CliEval, ReferenceCsvAndFirstWordRule) {
  const std::string csv = write("reference.csv",
                                "uuid,answers,generation\n"
                                "1,\"['Paris', 'City of Light']\",\" Paris is the answer\nQ:\"\n"
                                "2,\"['Rome']\",\"Milan, then Rome\"\n");
  const auto lines = run_flexgen("eval --json '" + csv + "'", tmp("csv"));
  ASSERT_EQ(lines.exit_code, 0) << lines.err;
  EXPECT_NE(lines.out.find("\"n\":2,\"correct\":2,"), std::string::npos) << lines.out;
  const auto words = run_flexgen("eval --json --extract first-word '" + csv + "'", tmp("csv_word"));
  ASSERT_EQ(words.exit_code, 0) << words.err;
  EXPECT_NE(words.out.find("\"n\":2,\"correct\":1,"), std::string::npos) << words.out;
}

TEST(CliEval, BadLineIsOneClearErrorWithFileAndLine) {
  const std::string path = write("bad.jsonl", std::string(kRows) + "{\"uuid\": \"c\", \"answers\": [\"x\"],\n");
  const auto r = run_flexgen("eval '" + path + "'", tmp("bad"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("[error] " + path + ":6: not valid JSON"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  const auto missing = run_flexgen("eval '" + write("noanswers.jsonl", "{\"prediction\": \"x\"}\n") + "'", tmp("noans"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("noanswers.jsonl:1: no answers"), std::string::npos) << missing.err;

  const auto absent = run_flexgen("eval '" + tmp("absent.jsonl") + "'", tmp("absent"));
  EXPECT_EQ(absent.exit_code, 1);
  EXPECT_NE(absent.err.find("absent.jsonl: cannot open the result file"), std::string::npos) << absent.err;
}

TEST(CliEval, UsageErrorsExitTwo) {
  const std::string path = write("usage.jsonl", kRows);
  for (const std::string& args : {"--by uuid", "--extract last-word", "--no-such-flag"}) {
    const auto r = run_flexgen("eval " + args + " '" + path + "'", tmp("usage"));
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(r.out, "") << args;
  }
  const auto by = run_flexgen("eval --by uuid '" + path + "'", tmp("usage_by"));
  EXPECT_NE(by.err.find("--by: 'uuid' is not a grouping (only: method)"), std::string::npos) << by.err;
}
