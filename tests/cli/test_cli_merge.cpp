// N ranks sharing one `{rank}` pattern, then `flexgen merge`: the single-process run's records,
// byte for byte, and one summary; the refusals, with their messages and exit codes.
#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "../generate/tiny_model_dir.h"
#include "run_command.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::run_flexgen_env;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("merge_" + name); }

bool exists(const std::string& path) { return std::ifstream(path).good(); }

class CliMerge : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_dir_ = new std::string(flexgen::testing::write_tiny_model_dir(tmp("model"))); }
  static void TearDownTestSuite() { delete model_dir_; }
  static std::string generate(const std::string& dtype) {
    return "generate -q --model '" + *model_dir_ + "' --dtype " + dtype + " --threads 1 --few-shot 1 ";
  }
  // The whole run and its 2 shards (shard 1 from RANK/WORLD_SIZE, as a launcher gives it).
  static void run_whole_and_shards(const std::string& dtype, const std::string& args, const std::string& dir) {
    const auto whole = run_flexgen(generate(dtype) + args + "--output " + dir + "whole --summary " + dir + "whole.json",
                                   tmp("whole"));
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    const std::string pattern = "--output '" + dir + "part.{rank}' --summary '" + dir + "sum.{rank}-of-{world}.json' ";
    const auto s0 = run_flexgen(generate(dtype) + args + "--shard 0/2 " + pattern, tmp("s0"));
    ASSERT_EQ(s0.exit_code, 0) << s0.err;
    const auto s1 = run_flexgen_env("RANK=1 WORLD_SIZE=2", generate(dtype) + args + pattern, tmp("s1"));
    ASSERT_EQ(s1.exit_code, 0) << s1.err;
  }
  static inline std::string* model_dir_ = nullptr;
};

}  // namespace

TEST_F(CliMerge, TwoRanksMergedAreTheSingleProcessRun) {
  struct Case {
    std::string dtype, args;
  };
  const std::vector<Case> cases = {
      {"fp32", "--max-samples 7 --max-new-tokens 4 "},
      {"bf16", "--max-samples 7 --max-new-tokens 4 --shared-context "},
      {"fp32", "--max-samples 5 --max-new-tokens 3 --method per_prompt --num-paraphrases 2 --format csv "},
  };
  int k = 0;
  for (const Case& c : cases) {
    const std::string dir = tmp("c" + std::to_string(k++) + "_");
    run_whole_and_shards(c.dtype, c.args, dir);
    ASSERT_TRUE(exists(dir + "part.0") && exists(dir + "part.1") && exists(dir + "sum.1-of-2.json")) << c.args;
    // Parts in any order; the summaries after the parts.
    const auto r = run_flexgen("merge -q --output " + dir + "merged --summary " + dir + "merged.json " + dir +
                                   "part.1 " + dir + "part.0 --summaries " + dir + "sum.0-of-2.json " + dir +
                                   "sum.1-of-2.json",
                               tmp("merge"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(slurp(dir + "merged").empty());
    EXPECT_EQ(slurp(dir + "merged"), slurp(dir + "whole")) << c.dtype << " " << c.args;
    const auto merged = nlohmann::json::parse(slurp(dir + "merged.json"));
    const auto whole = nlohmann::json::parse(slurp(dir + "whole.json"));
    const auto s0 = nlohmann::json::parse(slurp(dir + "sum.0-of-2.json"));
    const auto s1 = nlohmann::json::parse(slurp(dir + "sum.1-of-2.json"));
    EXPECT_EQ(s1["shard"], "1/2");
    EXPECT_EQ(whole["shard"], "0/1");
    EXPECT_EQ(merged["ranks"], 2);
    EXPECT_FALSE(merged.contains("shard"));
    for (const char* key : {"method", "dataset", "samples", "rows", "skipped_done", "skipped_bad", "accuracy",
                            "accuracy_bidirectional", "exact_match", "prefill_tokens", "decode_tokens", "decode_steps"})
      EXPECT_EQ(merged[key], whole[key]) << key << " " << c.args;
    EXPECT_EQ(merged["wall_seconds"], std::max(s0["wall_seconds"], s1["wall_seconds"]));
    EXPECT_EQ(merged["peak_rss_bytes"], std::max(s0["peak_rss_bytes"], s1["peak_rss_bytes"]));
    EXPECT_DOUBLE_EQ(merged["samples_per_second"].get<double>(),
                     merged["samples"].get<double>() / merged["wall_seconds"].get<double>());
    // To stdout, converted to the other format.
    const std::string other = c.args.find("csv") != std::string::npos ? "jsonl" : "csv";
    const auto out = run_flexgen("merge -q --format " + other + " " + dir + "part.0 " + dir + "part.1", tmp("stdout"));
    ASSERT_EQ(out.exit_code, 0) << out.err;
    EXPECT_EQ(out.out.rfind(other == "csv" ? "uuid,method," : "{\"uuid\":", 0), 0u) << out.out;
  }
}

TEST_F(CliMerge, SeveralRanksMayNotShareOneFile) {
  const std::string out = tmp("shared.jsonl");
  struct Case {
    std::string args, message;
  };
  const std::vector<Case> cases = {
      {"--shard 1/2 --output " + out,
       "--output " + out + ": the 2 shards of this run would all write this one file; put {rank} in its name (e.g. " +
           tmp("shared.{rank}.jsonl") + ")"},
      {"--shard 0/3 --output '" + tmp("o.{rank}.jsonl") + "' --summary " + tmp("s.json"),
       "--summary " + tmp("s.json") + ": the 3 shards of this run would all write this one file; put {rank} in its "
                                      "name (e.g. " + tmp("s.{rank}.json") + ")"},
      {"--shard 0/2 --save-tokens " + tmp("t.jsonl"),
       "--save-tokens " + tmp("t.jsonl") + ": the 2 shards of this run would all write this one file; put {rank} in "
                                           "its name (e.g. " + tmp("t.{rank}.jsonl") + ")"},
  };
  for (const Case& c : cases) {
    // A model that does not exist: the refusal comes before loading it.
    const auto r = run_flexgen("generate -q --model /nonexistent/model " + c.args, tmp("shared"));
    EXPECT_EQ(r.exit_code, 2) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  EXPECT_FALSE(exists(out));
  const auto env = run_flexgen("generate -q --model /nonexistent/model --output " + out, tmp("shared_env"));
  EXPECT_EQ(env.exit_code, 1);  // one shard: the file is fine, the model is not
}

TEST_F(CliMerge, RefusesPartsThatAreNotTheShardsOfOneRun) {
  const std::string dir = tmp("bad_");
  run_whole_and_shards("fp32", "--max-samples 5 --max-new-tokens 2 ", dir);
  const std::string p0 = dir + "part.0", p1 = dir + "part.1", s0 = dir + "sum.0-of-2.json", s1 = dir + "sum.1-of-2.json";
  const auto avg = run_flexgen(generate("fp32") + "--max-samples 5 --max-new-tokens 2 --method avg --num-paraphrases 2 "
                                                  "--shard 1/2 --output '" + dir + "avg.{rank}'",
                               tmp("avg"));
  ASSERT_EQ(avg.exit_code, 0) << avg.err;
  struct Case {
    std::string args;
    int code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {p1, 1, p1 + ": holds samples 1, 3, ...: one sample in every 2, as a shard of a run of 2 shards does, but 1 part "
                   "is given: a shard is missing"},
      {p1 + " --summaries " + s0 + " " + s1, 1,
       s0 + ": is the summary of shard 0/2, but 1 part is given: a part is missing or one too many"},
      {p0 + " " + p0, 1, p0 + ": holds shard 0 of 2, as " + p0 + " does: a shard given twice"},
      {p0 + " " + p1 + " --summaries " + s1 + " " + s1, 1,
       s1 + ": is the summary of shard 1/2, as " + s1 + " is: a shard given twice"},
      {p0 + " " + dir + "avg.1", 1,
       dir + "avg.1:1: method avg, but " + p0 + ":1 has method flex: not shards of one run"},
      {p0 + " " + dir + "missing", 1, dir + "missing: cannot open the result file"},
      {"--output " + p0 + " " + p0 + " " + p1, 2,
       "--output " + p0 + ": is one of the files being merged (" + p0 + "); write the merged file elsewhere"},
      {"--summary " + dir + "m.json " + p0 + " " + p1, 2, "--summary needs --summaries FILE... (the summary of each shard)"},
      {"--format tsv " + p0 + " " + p1, 2, "--format: 'tsv' is not an output format (jsonl or csv)"},
  };
  const std::string before = slurp(p0);
  for (const Case& c : cases) {
    const auto r = run_flexgen("merge -q " + c.args, tmp("refuse"));
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << " -> " << r.err;
    EXPECT_EQ(r.out, "") << c.args;
  }
  EXPECT_EQ(slurp(p0), before);
  EXPECT_EQ(run_flexgen("merge -q", tmp("none")).exit_code, 2);
}
