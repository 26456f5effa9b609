// `flexgen debug` on a tiny model: the trace agrees with what `generate` produced for
// the same sample, the segment table and isolation lines are exact, the output fits 100
// columns; non-flex methods, MyriadLAMA, JSON and the mask picture.
#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../cli/run_command.h"
#include "../generate/tiny_model_dir.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("debug_" + name); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string fmt(const char* format, long long a, long long b, long long c, const std::string& d) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, a, b, c, d.c_str());
  return buf;
}

// The segment table row the trace must print for a group over [start, end) with position ids from `first`.
std::string table_row(const std::string& group, long long start, long long end, long long first) {
  char range[64], ids[64], buf[256];
  std::snprintf(range, sizeof range, "[%lld, %lld)", start, end);
  std::snprintf(ids, sizeof ids, "%lld-%lld", first, first + (end - start) - 1);
  std::snprintf(buf, sizeof buf, "  %-12s %-15s %6lld  %s", group.c_str(), range, end - start,
                end > start ? ids : "-");
  return buf;
}

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

class CliDebug : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_dir_ = new std::string(flexgen::testing::write_tiny_model_dir(tmp("model"))); }
  static void TearDownTestSuite() { delete model_dir_; }
  static std::string opts() {
    return " -q --model '" + *model_dir_ + "' --dtype fp32 --threads 1 --few-shot 1 --max-new-tokens 6 --stop eos ";
  }
  static inline std::string* model_dir_ = nullptr;
};

}  // namespace

TEST_F(CliDebug, VerboseTraceMatchesGenerate) {
  const auto gen = run_flexgen("generate" + opts() + "--max-samples 1", tmp("gen"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const auto rec = nlohmann::json::parse(lines_of(gen.out).at(0));

  const auto dbg = run_flexgen("debug" + opts() + "--verbose --block-size 16", tmp("dbg"));
  ASSERT_EQ(dbg.exit_code, 0) << dbg.err;
  const auto lines = lines_of(dbg.out);
  for (const std::string& l : lines) EXPECT_LE(columns(l), 100u) << l;

  // Segment table rows, from generate's own record of the spans (sequential positions).
  const auto& segs = rec["segments"];
  ASSERT_EQ(segs.size(), 5u);
  EXPECT_TRUE(has_line(lines, table_row("BOS", 0, 1, 0))) << dbg.out;
  for (size_t k = 0; k < segs.size(); ++k) {
    const long long s = segs[k][0], e = segs[k][1];
    EXPECT_TRUE(has_line(lines, table_row("para " + std::to_string(k + 1), s, e, s))) << k << "\n" << dbg.out;
    EXPECT_TRUE(has_line(lines, fmt("  %lld. [index %lld] %lld prompt tokens%s", static_cast<long long>(k + 1),
                                    static_cast<long long>(k), e - s, "")))
        << k;
    if (k + 1 < segs.size()) {
      const long long next = segs[k + 1][0];
      EXPECT_TRUE(has_line(lines, table_row("sep " + std::to_string(k + 1), e, next, e))) << k;
    }
  }
  const long long prompt = rec["prompt_tokens"], generated = rec["generated_tokens"];
  EXPECT_TRUE(has_line(lines, table_row("generated", prompt, prompt + generated, prompt))) << dbg.out;
  EXPECT_TRUE(has_line(lines, "Isolation check (prefill block mask, block size 16): all 5 segments isolated"))
      << dbg.out;
  EXPECT_TRUE(has_line(lines, "Block mask statistics (block size 16):")) << dbg.out;
  EXPECT_NE(dbg.out.find("Mask Matrix (" + std::to_string(prompt + generated) + "x"), std::string::npos);
  EXPECT_NE(dbg.out.find(" G0 "), std::string::npos);

  // The same generation as generate: ids, text, prediction, correctness.
  std::string ids;
  for (size_t i = 0; i < rec["generated_ids"].size(); ++i)
    ids += (i ? " " : "") + std::to_string(rec["generated_ids"][i].get<int>());
  EXPECT_TRUE(has_line(lines, "Generated ids: " + ids)) << dbg.out;
  EXPECT_NE(dbg.out.find("Correct: " + std::string(rec["correct"].get<bool>() ? "yes" : "no")), std::string::npos);
  // One step block per generated token, in order, with the chosen id.
  size_t steps = 0;
  for (const std::string& l : lines) {
    if (l.rfind("  step ", 0) != 0) continue;
    const std::string want = "chosen " + std::to_string(rec["generated_ids"][steps].get<int>()) + " ";
    EXPECT_NE(l.find(want), std::string::npos) << l;
    ++steps;
  }
  EXPECT_EQ(steps, rec["generated_ids"].size());
  EXPECT_NE(dbg.out.find("token ids     shape [1, " + std::to_string(prompt) + "]"), std::string::npos) << dbg.out;
  EXPECT_NE(dbg.out.find("position ids  shape [1, " + std::to_string(prompt) + "]"), std::string::npos);

  // The JSON trace says the same.
  const auto js = run_flexgen("debug" + opts() + "--json", tmp("json"));
  ASSERT_EQ(js.exit_code, 0) << js.err;
  const auto j = nlohmann::json::parse(lines_of(js.out).at(0));
  EXPECT_EQ(j["uuid"], rec["uuid"]);
  const auto& stream = j["streams"][0];
  EXPECT_EQ(stream["generated_ids"], rec["generated_ids"]);
  EXPECT_EQ(stream["generation"], rec["generation"]);
  EXPECT_EQ(stream["prediction"], rec["prediction"]);
  EXPECT_EQ(stream["correct"], rec["correct"]);
  ASSERT_EQ(stream["steps"].size(), rec["generated_ids"].size());
  for (size_t i = 0; i < stream["steps"].size(); ++i) {
    const auto& st = stream["steps"][i];
    ASSERT_EQ(st["top"].size(), 5u);
    EXPECT_EQ(st["chosen"], rec["generated_ids"][i]);
    EXPECT_EQ(st["top"][0]["id"], st["chosen"]);  // greedy
    for (size_t t = 1; t < 5; ++t) EXPECT_GE(st["top"][t - 1]["probability"], st["top"][t]["probability"]);
  }
  EXPECT_TRUE(j["isolation"]["isolated"]);
  EXPECT_EQ(j["segments"].size(), 11u);  // BOS, 5 paraphrases, 4 separators, generated
}

TEST_F(CliDebug, RestartPositionsInTheTable) {
  const auto gen = run_flexgen("generate" + opts() + "--max-samples 1 --positions restart --num-paraphrases 3",
                               tmp("gen_r"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const auto rec = nlohmann::json::parse(lines_of(gen.out).at(0));
  const auto dbg = run_flexgen("debug" + opts() + "--positions restart --num-paraphrases 3", tmp("dbg_r"));
  ASSERT_EQ(dbg.exit_code, 0) << dbg.err;
  const auto lines = lines_of(dbg.out);
  long long longest = 0;
  for (const auto& s : rec["segments"]) {
    const long long a = s[0], b = s[1];
    longest = std::max(longest, b - a);
  }
  for (size_t k = 0; k < 3; ++k) {
    const long long s = rec["segments"][k][0], e = rec["segments"][k][1];
    EXPECT_TRUE(has_line(lines, table_row("para " + std::to_string(k + 1), s, e, 1))) << dbg.out;
  }
  const long long prompt = rec["prompt_tokens"], generated = rec["generated_tokens"];
  EXPECT_TRUE(has_line(lines, table_row("generated", prompt, prompt + generated, 1 + longest))) << dbg.out;
}

TEST_F(CliDebug, NonFlexMethodsSayThereIsNoConcatenatedMask) {
  const auto gen = run_flexgen("generate" + opts() + "--max-samples 1 --method avg --num-paraphrases 2", tmp("gen_a"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const auto rec = nlohmann::json::parse(lines_of(gen.out).at(0));
  const auto dbg = run_flexgen("debug" + opts() + "--method avg --num-paraphrases 2 --json", tmp("dbg_a"));
  ASSERT_EQ(dbg.exit_code, 0) << dbg.err;
  const auto j = nlohmann::json::parse(lines_of(dbg.out).at(0));
  EXPECT_EQ(j["streams"][0]["generated_ids"], rec["generated_ids"]);
  EXPECT_TRUE(j["mask"].is_null());
  EXPECT_EQ(j["rows"].size(), 2u);
  const auto text = run_flexgen("debug" + opts() + "--method avg --num-paraphrases 2", tmp("dbg_at"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("No concatenated mask: method avg"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("Isolation check"), std::string::npos);
  const auto img = run_flexgen("debug" + opts() + "--method avg --mask-image " + tmp("x.svg"), tmp("dbg_ai"));
  EXPECT_EQ(img.exit_code, 2);
  EXPECT_NE(img.err.find("--mask-image"), std::string::npos) << img.err;
}

TEST_F(CliDebug, WritesTheMaskPicture) {
  const std::string svg = tmp("mask.svg");
  std::remove(svg.c_str());
  const auto r = run_flexgen("debug" + opts() + "--mask-image " + svg, tmp("dbg_img"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(slurp(svg).find("<svg"), std::string::npos);
  const auto bad = run_flexgen("debug" + opts() + "--mask-image " + tmp("mask.bmp"), tmp("dbg_bad"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--mask-image"), std::string::npos) << bad.err;
}

TEST_F(CliDebug, MyriadLamaRunsInGenerateAndDebug) {
  const auto gen = run_flexgen("generate" + opts() + "--dataset myriadlama --max-samples 1 --num-paraphrases 3",
                               tmp("gen_m"));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const auto rec = nlohmann::json::parse(lines_of(gen.out).at(0));
  EXPECT_EQ(rec["paraphrases"].size(), 3u);
  const auto dbg =
      run_flexgen("debug" + opts() + "--dataset myriadlama --num-paraphrases 3 --shared-context --json", tmp("dbg_m"));
  ASSERT_EQ(dbg.exit_code, 0) << dbg.err;
  const auto j = nlohmann::json::parse(lines_of(dbg.out).at(0));
  EXPECT_EQ(j["uuid"], rec["uuid"]);
  // Issue 17: the shared part is laid out as the few-shot-sharing groups of the reference's
  // MyriadLAMA variant (instruction, then each example's question and answer lines).
  EXPECT_EQ(j["segments"][1]["group"], "context");
  EXPECT_EQ(j["segments"][2]["group"], "fewshot Q1");
  EXPECT_EQ(j["segments"][3]["group"], "fewshot A1");
  EXPECT_EQ(j["segments"][4]["group"], "para 1");
  EXPECT_TRUE(j["isolation"]["isolated"]);
  EXPECT_EQ(j["isolation"]["few_shot_examples"], 1);
  // generate runs under the same mask: its record equals debug's stream.
  const auto gen_shared = run_flexgen("generate" + opts() + "--dataset myriadlama --max-samples 1 --num-paraphrases 3 "
                                      "--shared-context", tmp("gen_ms"));
  ASSERT_EQ(gen_shared.exit_code, 0) << gen_shared.err;
  EXPECT_EQ(nlohmann::json::parse(lines_of(gen_shared.out).at(0))["generated_ids"], j["streams"][0]["generated_ids"]);
  const auto text = run_flexgen("debug" + opts() + "--dataset myriadlama --num-paraphrases 3 --shared-context",
                                tmp("dbg_mt"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("the 1 few-shot examples follow the few-shot rules"), std::string::npos) << text.out;
  // Without --shared-context the prompts are the same as generate's: the same tokens come out.
  const auto same = run_flexgen("debug" + opts() + "--dataset myriadlama --num-paraphrases 3 --json", tmp("dbg_m2"));
  ASSERT_EQ(same.exit_code, 0) << same.err;
  const auto j2 = nlohmann::json::parse(lines_of(same.out).at(0));
  EXPECT_EQ(j2["streams"][0]["generated_ids"], rec["generated_ids"]);
  EXPECT_EQ(j2["streams"][0]["prediction"], rec["prediction"]);
}

TEST_F(CliDebug, UsageErrors) {
  for (const std::string& args : {"--max-samples 0", "--method nope", "--positions sideways", "--block-size 0"}) {
    const auto r = run_flexgen("debug" + opts() + args, tmp("usage"));
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
  }
}
