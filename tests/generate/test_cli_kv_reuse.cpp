// The run-level KV store (issue 15): records with the store are byte for byte those without it,
// for every method and layout it serves, at batch 1 and 3, and the summary counts what it reused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../cli/run_command.h"
#include "../test_tmp.h"
#include "tiny_model_dir.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("kvr_" + name); }

class KvReuse : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_dir_ = new std::string(flexgen::testing::write_tiny_model_dir(tmp("model"))); }
  static void TearDownTestSuite() { delete model_dir_; }
  static std::string base(const std::string& dtype = "fp32") {
    return "generate -q --model '" + *model_dir_ + "' --dtype " + dtype +
           " --threads 2 --few-shot 2 --max-samples 5 --max-new-tokens 5 --stop eos,newline,e ";
  }
  // Runs `args` with and without the store; expects the same records and returns the summary
  // of the run with it.
  static nlohmann::json same_records(const std::string& args, const std::string& name) {
    const std::string s_on = tmp(name + "_on.json"), s_off = tmp(name + "_off.json");
    const auto on = run_flexgen(args + " --summary " + s_on, tmp(name + "_on"));
    const auto off = run_flexgen(args + " --no-kv-reuse --summary " + s_off, tmp(name + "_off"));
    EXPECT_EQ(on.exit_code, 0) << on.err;
    EXPECT_EQ(off.exit_code, 0) << off.err;
    EXPECT_FALSE(on.out.empty());
    EXPECT_EQ(on.out, off.out) << args;
    const auto j_off = nlohmann::json::parse(slurp(s_off));
    EXPECT_EQ(j_off["kv_reuse"]["prompt_tokens_reused"].get<int64_t>(), 0);
    EXPECT_FALSE(j_off["kv_reuse"]["enabled"].get<bool>());
    return nlohmann::json::parse(slurp(s_on));
  }
  static inline std::string* model_dir_ = nullptr;
};

struct Case {
  std::string name, args;
};

// Block size 16: prefixes, padding and paraphrases cut blocks in many places.
const std::vector<Case> kCases = {
    {"flex", "--method flex"},
    {"flex_shared", "--method flex --shared-context"},
    {"flex_restart", "--method flex --positions restart"},
    {"flex_shared_restart", "--method flex --shared-context --positions restart"},
    {"flex_segment_logits", "--method flex --shared-context --positions restart --fusion segment-logits"},
    {"avg", "--method avg"},
    {"avg_shared", "--method avg --shared-context"},
    {"max", "--method max"},
    {"per_prompt", "--method per_prompt"},
    {"origin", "--method origin"},
};

}  // namespace

TEST_F(KvReuse, RecordsAreBitwiseThoseWithoutTheStore) {
  for (const Case& c : kCases)
    for (const char* batch : {"1", "3"}) {
      SCOPED_TRACE(c.name + " batch " + batch);
      const std::string args = base() + c.args + " --block-size 16 --batch-size " + batch;
      const nlohmann::json j = same_records(args, c.name + "_b" + batch);
      const nlohmann::json& kv = j["kv_reuse"];
      EXPECT_TRUE(kv["enabled"].get<bool>());
      // Every sample after the first reuses BOS + instruction + few-shot (paraphrase 1's for flex
      // without --shared-context).
      EXPECT_GT(kv["prompt_tokens_reused"].get<int64_t>(), 0);
      // Under restart positions flex's paraphrases 2.. copy paraphrase 1's instruction (span copies).
      EXPECT_EQ(kv["prompt_tokens_copied"].get<int64_t>() > 0, c.name == "flex_restart");
      EXPECT_EQ(kv["prompt_tokens_reused"].get<int64_t>() + kv["prompt_tokens_computed"].get<int64_t>() +
                    kv["prompt_tokens_copied"].get<int64_t>(),
                j["prefill_tokens"].get<int64_t>());
      EXPECT_GE(kv["store_entries"].get<int64_t>(), 1);
      // A prefill pass a sample at batch 1 (no more at batch 3), and one for each stored prefix.
      const int64_t passes = j["prefill_passes"].get<int64_t>(), samples = j["samples"].get<int64_t>();
      const int64_t stored = kv["store_entries"].get<int64_t>();
      if (std::string(batch) == "1") {
        EXPECT_EQ(passes, samples + stored);
      }
      EXPECT_GE(passes, 1 + stored);
      EXPECT_LE(passes, samples + stored);
    }
}

TEST_F(KvReuse, Bf16AndTheDefaultBlockSize) {
  for (const std::string args : {"--method avg --batch-size 3", "--method flex --shared-context"}) {
    SCOPED_TRACE(args);
    const nlohmann::json j = same_records(base("bf16") + args, "bf16");
    EXPECT_GT(j["kv_reuse"]["prompt_tokens_reused"].get<int64_t>(), 0);
  }
}

// Nothing is kept from one admission to the next: each sample (batch 1) computes its prefix again,
// once for its five rows.
TEST_F(KvReuse, AStoreOfZeroMegabytesKeepsNothing) {
  const nlohmann::json j = same_records(base() + "--method avg --kv-store-mb 0", "zero");
  const nlohmann::json kept = same_records(base() + "--method avg", "kept");
  EXPECT_EQ(j["kv_reuse"]["store_entries"].get<int64_t>(), 0);
  EXPECT_EQ(j["kv_reuse"]["store_peak_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(j["kv_reuse"]["store_limit_mb"].get<int64_t>(), 0);
  EXPECT_EQ(j["prefill_passes"].get<int64_t>(), 2 * j["samples"].get<int64_t>());  // a prefix pass each
  EXPECT_GT(j["kv_reuse"]["prompt_tokens_computed"].get<int64_t>(),
            kept["kv_reuse"]["prompt_tokens_computed"].get<int64_t>());
  EXPECT_EQ(kept["kv_reuse"]["store_entries"].get<int64_t>(), 1);
}

TEST_F(KvReuse, AskingForItOnTheCpuIsTheDefault) {
  const std::string s1 = tmp("ask1.json"), s2 = tmp("ask2.json");
  const auto asked = run_flexgen(base() + "--method origin --kv-reuse --summary " + s1, tmp("ask1"));
  const auto dflt = run_flexgen(base() + "--method origin --summary " + s2, tmp("ask2"));
  ASSERT_EQ(asked.exit_code, 0) << asked.err;
  ASSERT_EQ(dflt.exit_code, 0) << dflt.err;
  EXPECT_EQ(asked.out, dflt.out);
  EXPECT_EQ(nlohmann::json::parse(slurp(s1))["kv_reuse"], nlohmann::json::parse(slurp(s2))["kv_reuse"]);
}

TEST_F(KvReuse, BothFlagsAreAUsageError) {
  const auto r = run_flexgen(base() + "--kv-reuse --no-kv-reuse", tmp("both"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--kv-reuse"), std::string::npos) << r.err;
  const auto neg = run_flexgen(base() + "--kv-store-mb -1", tmp("neg"));
  EXPECT_EQ(neg.exit_code, 2);
}
