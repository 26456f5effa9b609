// `flexgen paraphrase` on a tiny model: record format, same seeds -> same file, resume
// after a cut, and the output feeds `generate`.
#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../cli/run_command.h"
#include "../generate/tiny_model_dir.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("para_" + name); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class CliParaphrase : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new std::string(flexgen::testing::write_tiny_model_dir(tmp("model")));
    input_ = new std::string(tmp("input.jsonl"));
    std::ofstream(*input_) << R"({"uuid": "q1", "question": "what is the capital of france?", "answers": ["Paris"]})"
                           << "\n"
                           << R"({"uuid": "q2", "question": "who wrote hamlet?", "answers": ["Shakespeare"]})" << "\n"
                           << R"({"uuid": "q3", "question": "where is the eiffel tower?", "answers": ["Paris"]})"
                           << "\n";
  }
  static void TearDownTestSuite() {
    delete model_dir_;
    delete input_;
  }
  static std::string base() {
    return "paraphrase -q --model '" + *model_dir_ + "' --dtype fp32 --threads 1 --max-new-tokens 8 --dataset " +
           *input_ + " ";
  }
  static inline std::string* model_dir_ = nullptr;
  static inline std::string* input_ = nullptr;
};

}  // namespace

TEST_F(CliParaphrase, RecordsAreReadyForGenerateAndReproducible) {
  const std::string a = tmp("a.jsonl"), b = tmp("b.jsonl");
  ASSERT_EQ(run_flexgen(base() + "--output " + a, tmp("a")).exit_code, 0);
  const auto lines = lines_of(slurp(a));
  ASSERT_EQ(lines.size(), 3u);
  const std::vector<std::string> uuids = {"q1", "q2", "q3"};
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto j = nlohmann::ordered_json::parse(lines[i]);
    std::vector<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"uuid", "question", "answers", "paraphrases"}));
    EXPECT_EQ(j["uuid"], uuids[i]);
    ASSERT_EQ(j["paraphrases"].size(), 6u);
    EXPECT_EQ(j["paraphrases"][0], j["question"]);
    for (const auto& p : j["paraphrases"]) {
      const std::string s = p.get<std::string>();
      EXPECT_FALSE(s.empty());
      EXPECT_EQ(s.find('\n'), std::string::npos);
      EXPECT_TRUE(s.front() != ' ' && s.back() != ' ') << s;
    }
  }
  // Same seeds, same file; other seeds, another file.
  ASSERT_EQ(run_flexgen(base() + "--output " + b, tmp("b")).exit_code, 0);
  EXPECT_EQ(slurp(a), slurp(b));
  const auto other = run_flexgen(base() + "--seed 100", tmp("c"));
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(other.out, slurp(a));
  // generate reads the records.
  const auto gen = run_flexgen("generate -q --model '" + *model_dir_ + "' --dtype fp32 --threads 1 --few-shot 0 " +
                                   "--max-new-tokens 3 --dataset " + a,
                               tmp("gen"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_EQ(lines_of(gen.out).size(), 3u);
}

TEST_F(CliParaphrase, ResumeAfterACutGivesTheSameFile) {
  const std::string full = tmp("full.jsonl"), part = tmp("part.jsonl");
  ASSERT_EQ(run_flexgen(base() + "--output " + full, tmp("full")).exit_code, 0);
  ASSERT_EQ(run_flexgen(base() + "--output " + part + " --max-samples 1", tmp("part")).exit_code, 0);
  {
    std::ofstream f(part, std::ios::app);
    f << R"({"uuid": "q2", "question": "who wr)";  // a killed writer's half line
  }
  const auto r = run_flexgen(base() + "--output " + part + " --resume", tmp("resume"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(part), slurp(full));
  // Resuming a complete file changes nothing.
  ASSERT_EQ(run_flexgen(base() + "--output " + part + " --resume", tmp("again")).exit_code, 0);
  EXPECT_EQ(slurp(part), slurp(full));
}

TEST_F(CliParaphrase, BadInput) {
  const auto missing = run_flexgen(base() + "--dataset /nonexistent.jsonl", tmp("missing"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("/nonexistent.jsonl"), std::string::npos) << missing.err;
  EXPECT_EQ(run_flexgen(base() + "--resume", tmp("resume_stdout")).exit_code, 2);
  EXPECT_EQ(run_flexgen(base() + "--temperature 0", tmp("temp")).exit_code, 2);
}
