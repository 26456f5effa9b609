// `flexgen generate` end to end on a tiny model directory: output records,
// resume after a real kill, shards, and errors.
#include <gtest/gtest.h>

#include "../test_tmp.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "../cli/run_command.h"
#include "tiny_model_dir.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::run_flexgen_env;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("gen_" + name); }

class CliGenerate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new std::string(flexgen::testing::write_tiny_model_dir(tmp("model")));
  }
  static void TearDownTestSuite() { delete model_dir_; }
  static std::string base() {
    return "generate -q --model '" + *model_dir_ + "' --dtype fp32 --threads 1 --few-shot 1 ";
  }
  static inline std::string* model_dir_ = nullptr;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

size_t count_lines(const std::string& path) {
  const std::string s = slurp(path);
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

TEST_F(CliGenerate, WritesOneScoredRecordPerSample) {
  const auto r = run_flexgen(base() + "--max-samples 3 --max-new-tokens 4 --summary " + tmp("summary.json"),
                             tmp("basic"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u);
  for (const std::string& l : lines) {
    const auto j = nlohmann::json::parse(l);
    for (const char* key : {"uuid", "method", "paraphrases", "answers", "prediction", "generation", "generated_ids",
                            "correct", "prompt_tokens", "generated_tokens", "segments"})
      EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["method"], "flex");
    EXPECT_EQ(j["paraphrases"].size(), 5u);
    EXPECT_EQ(j["segments"].size(), 5u);
    EXPECT_LE(j["generated_ids"].size(), 4u);
    EXPECT_EQ(j["generated_tokens"], j["generated_ids"].size());
  }
  const auto summary = nlohmann::json::parse(slurp(tmp("summary.json")));
  EXPECT_EQ(summary["samples"], 3);
  EXPECT_GT(summary["decode_tokens"].get<int>(), 0);
  // Where it computed and what reproduces it.
  const auto& c = summary["compute"];
  EXPECT_EQ(c["device"], "cpu");
  EXPECT_EQ(c["dtype"], "fp32");
  EXPECT_EQ(c["threads"], 1);
  const std::string path = c["cpu_kernels"];
  EXPECT_TRUE(path == "portable" || path == "avx2" || path == "avx512" || path == "avx512bf16") << path;
  const auto& p = summary["provenance"];
  EXPECT_FALSE(p["flexgen_version"].get<std::string>().empty());
  EXPECT_EQ(p["model"], *model_dir_);
  const std::string fp = p["model_fingerprint"];
  EXPECT_EQ(fp.size(), 32u);
  EXPECT_EQ(fp.find_first_not_of("0123456789abcdef"), std::string::npos) << fp;
  EXPECT_EQ(p["dtype"], "fp32");
  EXPECT_EQ(p["device_kind"], "cpu");
  EXPECT_EQ(p["batch_invariant"], true);
  EXPECT_EQ(p["seed"], 0);
  EXPECT_EQ(p["few_shot_seed"], 42);
  // Every record carries the same provenance as the summary.
  for (const std::string& l : lines) EXPECT_EQ(nlohmann::json::parse(l)["run"], p) << l;
  // The same model gives the same fingerprint.
  ASSERT_EQ(run_flexgen(base() + "--max-samples 1 --max-new-tokens 1 --summary " + tmp("again.json"), tmp("again")).exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(slurp(tmp("again.json")))["provenance"]["model_fingerprint"], fp);
}

TEST_F(CliGenerate, ResumeAfterAKillGivesTheUninterruptedFile) {
  const std::string args = "--max-samples 24 --method per_prompt --num-paraphrases 3 --max-new-tokens 16 --stop none ";
  const std::string full = tmp("full.jsonl"), part = tmp("part.jsonl");
  std::remove(full.c_str());
  std::remove(part.c_str());
  ASSERT_EQ(run_flexgen(base() + args + "--output " + full, tmp("full")).exit_code, 0);
  ASSERT_EQ(count_lines(full), 72u);

  // Start the same run and kill it with SIGKILL once a few rows are out.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string cmd = std::string("exec '") + FLEXGEN_BINARY + "' " + base() + args + "--output " + part;
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count_lines(part) < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const size_t at_kill = count_lines(part);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  EXPECT_LT(at_kill, 72u);
  // A half-written last line, as a kill during a write leaves.
  { std::ofstream(part, std::ios::app) << "{\"uuid\": \"half"; }

  const auto r = run_flexgen(base() + args + "--output " + part + " --resume", tmp("resume"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(part), slurp(full));
  // Resuming a finished file runs nothing and changes nothing.
  const auto again = run_flexgen(base() + args + "--output " + part + " --resume", tmp("again"));
  ASSERT_EQ(again.exit_code, 0);
  EXPECT_EQ(slurp(part), slurp(full));
}

TEST_F(CliGenerate, ShardsTogetherGiveTheWholeRun) {
  const std::string args = "--max-samples 7 --max-new-tokens 3 --method avg --num-paraphrases 2 ";
  const auto whole = run_flexgen(base() + args, tmp("whole"));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  std::multiset<std::string> shards;
  for (int i = 0; i < 3; ++i) {
    const auto r = run_flexgen(base() + args + "--shard " + std::to_string(i) + "/3", tmp("shard"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& l : lines_of(r.out)) shards.insert(l);
  }
  const auto all = lines_of(whole.out);
  EXPECT_EQ(shards, std::multiset<std::string>(all.begin(), all.end()));
  // RANK/WORLD_SIZE select the same shard as --shard.
  const auto by_flag = run_flexgen(base() + args + "--shard 1/3", tmp("flag"));
  const auto by_env = run_flexgen_env("RANK=1 WORLD_SIZE=3", base() + args, tmp("env"));
  EXPECT_EQ(by_env.exit_code, 0) << by_env.err;
  EXPECT_EQ(by_env.out, by_flag.out);
}

TEST_F(CliGenerate, BatchedSamplesEqualOneAtATime) {
  const std::string args = "--max-samples 5 --max-new-tokens 6 --positions restart ";
  const auto one = run_flexgen(base() + args, tmp("b1"));
  const auto four = run_flexgen(base() + args + "--batch-size 4", tmp("b4"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(four.exit_code, 0) << four.err;
  EXPECT_EQ(one.out, four.out);
  // avg (5 rows per sample) with early stops: finished samples' rows take the next ones.
  const std::string avg = "--max-samples 6 --max-new-tokens 8 --method avg --stop eos,newline,e ";
  const auto a1 = run_flexgen(base() + avg, tmp("a1"));
  const auto a3 = run_flexgen(base() + avg + "--batch-size 3", tmp("a3"));
  ASSERT_EQ(a1.exit_code, 0) << a1.err;
  ASSERT_EQ(a3.exit_code, 0) << a3.err;
  EXPECT_EQ(a1.out, a3.out);
}

TEST_F(CliGenerate, SaveTokensWritesTheIdsTheRunFed) {
  // Per sample: bos, shared context, paraphrases, separator; the flex record's prompt length is
  // exactly BOS + context + paraphrases + separators between them.
  const std::string path = tmp("tokens.jsonl");
  const auto r = run_flexgen(base() + "--max-samples 3 --max-new-tokens 2 --shared-context --save-tokens " + path,
                             tmp("save_tokens"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = lines_of(r.out), tokens = lines_of(slurp(path));
  ASSERT_EQ(tokens.size(), 3u);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto t = nlohmann::json::parse(tokens[i]);
    const auto rec = nlohmann::json::parse(records[i]);
    EXPECT_EQ(t["uuid"], rec["uuid"]);
    ASSERT_TRUE(t["bos"].is_number());
    ASSERT_EQ(t["paraphrases"].size(), 5u);
    EXPECT_FALSE(t["shared_context"].empty());
    size_t total = 1 + t["shared_context"].size() + 4 * t["separator"].size();
    for (const auto& p : t["paraphrases"]) total += p.size();
    EXPECT_EQ(rec["prompt_tokens"].get<size_t>(), total);
  }
  const auto bad = run_flexgen(base() + "--max-samples 1 --save-tokens /nonexistent/dir/t.jsonl", tmp("save_bad"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--save-tokens /nonexistent/dir/t.jsonl"), std::string::npos) << bad.err;
}

TEST_F(CliGenerate, BadInputGetsOneClearError) {
  struct Case {
    std::string args;
    int code;
    std::string message;
  };
  const std::string bad_jsonl = tmp("bad.jsonl");
  { std::ofstream(bad_jsonl) << "{\"question\": \"q?\", \"answers\": [\"a\"], \"paraphrases\": [\"q?\"]}\n{oops\n"; }
  const std::string short_jsonl = tmp("short.jsonl");
  { std::ofstream(short_jsonl) << "{\"question\": \"q?\", \"answers\": [\"a\"], \"paraphrases\": [\"q?\", \"r?\"]}\n"; }
  const std::vector<Case> cases = {
      {"--method median", 2, "--method: unknown method 'median'"},
      {"--positions sideways", 2, "sideways"},
      {"--fusion late", 2, "--fusion: unknown fusion 'late'"},
      {"--device tpu", 2, "--device: unknown device 'tpu'"},
      {"--device cuda", 1, "--device cuda"},
      {"--dtype fp16", 2, "--dtype fp16"},
      {"--stop none,eos", 2, "--stop"},
      {"--shard 3/2", 2, "3/2"},
      {"--max-new-tokens 0", 2, "--max-new-tokens"},
      {"--resume", 2, "--resume needs --output"},
      {"--method weighted_avg", 2, "needs --weights"},
      {"--dataset " + bad_jsonl + " --few-shot 0", 1, bad_jsonl + ":2"},
      {"--dataset " + short_jsonl + " --few-shot 0", 1, "2 paraphrases"},
  };
  for (const Case& c : cases) {
    const auto r = run_flexgen(base() + c.args, tmp("bad"));
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << " -> " << r.err;
    EXPECT_EQ(r.out, "") << c.args;
  }
  const auto missing = run_flexgen("generate -q --model /nonexistent/model", tmp("missing"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent/model"), std::string::npos) << missing.err;
  // --skip-bad runs what it can.
  const auto skip = run_flexgen(base() + "--dataset " + short_jsonl + " --few-shot 0 --skip-bad", tmp("skip"));
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_EQ(skip.out, "");
}

TEST_F(CliGenerate, PromptRecordsFromStandardInputNeedNoFewShotPool) {
  const std::string path = tmp("prompts.jsonl");
  {
    std::ofstream f(path);
    f << R"({"uuid": "p1", "answers": ["paris"], "prompts": ["Q: capital of france?\nA:", "Q: france's capital?\nA:"]})"
      << "\n";
  }
  // Default --few-shot 5 and no train pool: prompts are used verbatim, so that is fine.
  const auto r = run_flexgen("generate -q --model '" + *model_dir_ +
                                 "' --dtype fp32 --threads 1 --dataset - --num-paraphrases 2 --max-new-tokens 3 < '" +
                                 path + "'",
                             tmp("stdin"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(lines_of(r.out).at(0));
  EXPECT_EQ(j["uuid"], "p1");
  EXPECT_EQ(j["paraphrases"][1], "Q: france's capital?\nA:");
  // [BOS] + the prompt's bytes: the prompts were not templated.
  EXPECT_EQ(j["segments"][0][0], 1);
  EXPECT_EQ(j["segments"][0][1], 1 + static_cast<int>(std::string("Q: capital of france?\nA:").size()));
}
