// Cross-method tests of the generation engine on a tiny random model.
#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <set>

#include "flexgen/decode_state.h"
#include "flexgen/decoder.h"
#include "flexgen/cpu_isa.h"
#include "flexgen/methods.h"
#include "tiny_fixture.h"
#include "overlap_check.h"

using namespace flexgen;
using namespace flexgen::testing;

namespace {

// Every job's streams: the same ids and, step by step, the same top tokens and probabilities (bitwise).
void expect_same_streams(const std::vector<std::vector<StreamResult>>& a,
                         const std::vector<std::vector<StreamResult>>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t j = 0; j < a.size(); ++j) {
    ASSERT_EQ(a[j].size(), b[j].size()) << what;
    for (size_t s = 0; s < a[j].size(); ++s) {
      EXPECT_EQ(a[j][s].ids, b[j][s].ids) << what << ": job " << j << " stream " << s;
      EXPECT_EQ(a[j][s].text, b[j][s].text) << what << ": job " << j << " stream " << s;
      EXPECT_EQ(a[j][s].stop, b[j][s].stop) << what << ": job " << j << " stream " << s;
      ASSERT_EQ(a[j][s].trace.size(), b[j][s].trace.size()) << what;
      for (size_t t = 0; t < a[j][s].trace.size(); ++t)
        EXPECT_EQ(a[j][s].trace[t].top, b[j][s].trace[t].top) << what << ": job " << j << " step " << t;
    }
  }
}

class Methods : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto dir = std::filesystem::path(flexgen::testing::tmp_path("tiny_tok"));
    tokenizer_ = load_tokenizer(write_byte_tokenizer(dir)).release();
    model_ = new LlamaModel(make_tiny_model(7));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete model_;
  }

  SampleTokens sample(const std::vector<std::string>& questions, bool shared = false) const {
    const std::string instruction = "Answer the question based on general world knowledge.\n\n";
    SampleTokens s;
    s.bos = kTinyBos;
    if (shared) s.shared_context = tokenizer_->encode(instruction);
    for (const std::string& q : questions)
      s.paraphrases.push_back(tokenizer_->encode((shared ? "" : instruction) + "Q: " + q + "\nA:"));
    s.separator = tokenizer_->encode("\n\n[SEP]\n\n");
    return s;
  }

  std::vector<StreamResult> run(const SampleTokens& s, MethodOptions o, DecodeConfig cfg = {}) const {
    cfg.max_new_tokens = o.max_new_tokens;
    cfg.stops.eos = false;
    cfg.stops.newline = false;
    const SamplePlan plan = plan_sample(s, o, 11);
    return decode_streams(*model_, *tokenizer_, plan.rows, plan.streams, cfg);
  }

  // B plain causal rows over n positions: block masks of 8 (the block-sparse kernel) or none (dense).
  static BatchMask causal_rows(int64_t B, int64_t n, bool blocks) {
    const std::vector<AttentionMask> masks(static_cast<size_t>(B), causal_mask(n));
    return BatchMask::rows(masks, blocks ? std::vector<BlockMask>(static_cast<size_t>(B), build_block_mask(masks[0], 8))
                                         : std::vector<BlockMask>{});
  }

  static MethodOptions opts(Method m, int64_t n = 8) {
    MethodOptions o;
    o.method = m;
    o.max_new_tokens = n;
    return o;
  }

  static inline Tokenizer* tokenizer_ = nullptr;
  static inline LlamaModel* model_ = nullptr;
  const std::vector<std::string> questions_ = {"what currency does japan use?", "which money is used in japan?",
                                               "japan's currency is called what?", "what do the japanese pay with?",
                                               "name the currency of japan"};
};

}  // namespace

TEST_F(Methods, TinyModelGivesDiverseAnswers) {
  const auto per = run(sample(questions_), opts(Method::PerPrompt, 3));
  ASSERT_EQ(per.size(), questions_.size());
  std::set<int32_t> first;
  for (const auto& r : per) first.insert(r.ids[0]);
  EXPECT_GE(first.size(), 2u) << "the fixture model must not answer every prompt alike";
}

TEST_F(Methods, PerPromptRowZeroEqualsOrigin) {
  const auto per = run(sample(questions_), opts(Method::PerPrompt));
  const auto origin = run(sample(questions_), opts(Method::Origin));
  ASSERT_EQ(origin.size(), 1u);
  EXPECT_EQ(per[0].ids, origin[0].ids);
  EXPECT_EQ(per[0].text, origin[0].text);
  // Every row equals that paraphrase alone (padding of shorter rows changes nothing).
  for (size_t i = 1; i < questions_.size(); ++i) {
    const auto alone = run(sample({questions_[i]}), opts(Method::Origin));
    EXPECT_EQ(per[i].ids, alone[0].ids) << i;
  }
}

TEST_F(Methods, FlexWithOneParaphraseEqualsOrigin) {
  for (PositionMode pm : {PositionMode::Sequential, PositionMode::Restart}) {
    MethodOptions o = opts(Method::Flex);
    o.positions = pm;
    const auto flex = run(sample({questions_[0]}), o);
    const auto origin = run(sample({questions_[0]}), opts(Method::Origin));
    EXPECT_EQ(flex[0].ids, origin[0].ids) << to_string(pm);
  }
}

TEST_F(Methods, FlexRestartSegmentLogitsFirstTokenEqualsAvg) {
  MethodOptions o = opts(Method::Flex);
  o.positions = PositionMode::Restart;
  o.fusion = Fusion::SegmentLogits;
  DecodeConfig cfg;
  cfg.trace_top = 5;
  const auto flex = run(sample(questions_), o, cfg);
  const auto avg = run(sample(questions_), opts(Method::Avg), cfg);
  EXPECT_EQ(flex[0].ids[0], avg[0].ids[0]);
  // The distributions agree too (same mean of the same logits).
  ASSERT_EQ(flex[0].trace[0].top.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(flex[0].trace[0].top[i].first, avg[0].trace[0].top[i].first);
    EXPECT_NEAR(flex[0].trace[0].top[i].second, avg[0].trace[0].top[i].second, 1e-5);
  }
  // Also with a shared context.
  const auto flex_shared = run(sample(questions_, true), o, cfg);
  const auto avg_shared = run(sample(questions_, true), opts(Method::Avg), cfg);
  EXPECT_EQ(flex_shared[0].ids[0], avg_shared[0].ids[0]);
}

TEST_F(Methods, EnsemblesOfIdenticalPromptsEqualOrigin) {
  const std::vector<std::string> same(3, questions_[1]);
  const auto origin = run(sample({questions_[1]}), opts(Method::Origin));
  for (Method m : {Method::Avg, Method::Max}) {
    EXPECT_EQ(run(sample(same), opts(m))[0].ids, origin[0].ids) << to_string(m);
  }
}

TEST_F(Methods, WeightsSelectParaphrases) {
  SampleTokens s = sample(questions_);
  s.weights = {0, 0, 3, 0, 0};  // normalised to paraphrase 2 alone
  const auto alone = run(sample({questions_[2]}), opts(Method::Origin));
  EXPECT_EQ(run(s, opts(Method::WeightedAvg))[0].ids, alone[0].ids);
  EXPECT_EQ(run(s, opts(Method::WeightedMax))[0].ids, alone[0].ids);
  s.weights = {1, 1};
  EXPECT_THROW(plan_sample(s, opts(Method::WeightedAvg), 0), std::invalid_argument);
}

TEST_F(Methods, SamplingIsReproducibleWithASeed) {
  DecodeConfig cfg;
  cfg.sampling.temperature = 1.5;
  cfg.sampling.top_p = 0.9;
  const auto a = run(sample(questions_), opts(Method::Flex, 12), cfg);
  const auto b = run(sample(questions_), opts(Method::Flex, 12), cfg);
  EXPECT_EQ(a[0].ids, b[0].ids);
  MethodOptions o = opts(Method::Flex, 12);
  const SamplePlan plan = plan_sample(sample(questions_), o, 12345);
  cfg.max_new_tokens = 12;
  cfg.stops.eos = cfg.stops.newline = false;
  const auto c = decode_streams(*model_, *tokenizer_, plan.rows, plan.streams, cfg);
  EXPECT_NE(a[0].ids, c[0].ids) << "another seed should give another sample";
}

TEST_F(Methods, StopsApplyPerStream) {
  DecodeConfig cfg;
  cfg.max_new_tokens = 30;
  cfg.stops = parse_stop_criteria("e");  // a literal string most streams hit at different steps
  const SamplePlan plan = plan_sample(sample(questions_), opts(Method::PerPrompt, 30), 0);
  const auto res = decode_streams(*model_, *tokenizer_, plan.rows, plan.streams, cfg);
  std::set<size_t> lengths;
  for (const auto& r : res) lengths.insert(r.ids.size());
  EXPECT_GE(lengths.size(), 2u) << "streams should stop at different steps";
  for (size_t i = 0; i < res.size(); ++i) {
    const auto& r = res[i];
    if (r.stop == StopCriteria::Reason::String) {
      EXPECT_NE(r.text.find('e'), std::string::npos);
      // It stopped at the first token that made the text contain the stop string.
      std::vector<int32_t> before(r.ids.begin(), r.ids.end() - 1);
      EXPECT_EQ(tokenizer_->decode(before).find('e'), std::string::npos);
    } else {
      EXPECT_EQ(r.ids.size(), 30u);
    }
    // Each stream equals its paraphrase run alone with the same stop.
    const SamplePlan one = plan_sample(sample({questions_[i]}), opts(Method::Origin, 30), 0);
    const auto alone = decode_streams(*model_, *tokenizer_, one.rows, one.streams, cfg);
    EXPECT_EQ(alone[0].ids, r.ids) << i;
  }
}

TEST_F(Methods, SamplesBatchedTogetherEqualBatchOfOne) {
  // Two flex samples of different lengths in one decode call (left padding).
  MethodOptions o = opts(Method::Flex, 10);
  o.positions = PositionMode::Restart;
  const SamplePlan a = plan_sample(sample({questions_[0], questions_[1]}), o, 1);
  const SamplePlan b = plan_sample(sample({questions_[2], questions_[3], questions_[4]}), o, 2);
  DecodeConfig cfg;
  cfg.max_new_tokens = 10;
  cfg.stops.eos = cfg.stops.newline = false;
  std::vector<RowPlan> rows = {a.rows[0], b.rows[0]};
  std::vector<StreamPlan> streams = {a.streams[0], b.streams[0]};
  streams[1].rows = {1};
  const auto both = decode_streams(*model_, *tokenizer_, rows, streams, cfg);
  EXPECT_EQ(both[0].ids, decode_streams(*model_, *tokenizer_, a.rows, a.streams, cfg)[0].ids);
  EXPECT_EQ(both[1].ids, decode_streams(*model_, *tokenizer_, b.rows, b.streams, cfg)[0].ids);
}

TEST_F(Methods, ContinuousBatchingEqualsEachJobAlone) {
  // Jobs of different methods, row counts and lengths, some stopping early: with 2 or 3 in flight,
  // finished jobs' rows take the next job mid-run; every job's result equals the job run alone.
  const std::vector<std::pair<Method, std::vector<size_t>>> specs = {
      {Method::Flex, {0, 1}}, {Method::Avg, {2, 3, 4}}, {Method::PerPrompt, {1, 4}}, {Method::Flex, {0, 1, 2, 3, 4}},
      {Method::Origin, {3}},  {Method::Max, {0, 2}},    {Method::Flex, {4}}};
  DecodeConfig cfg;
  cfg.max_new_tokens = 9;
  cfg.stops.eos = cfg.stops.newline = false;
  std::vector<DecodeJob> jobs;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::vector<std::string> qs;
    for (size_t q : specs[i].second) qs.push_back(questions_[q]);
    MethodOptions o = opts(specs[i].first, 9);
    o.positions = i % 2 ? PositionMode::Restart : PositionMode::Sequential;
    const SamplePlan plan = plan_sample(sample(qs, i % 3 == 0), o, 100 + i);
    jobs.push_back(DecodeJob{plan.rows, plan.streams});
  }
  // A stop string from one job's own output makes it (and maybe others) finish early.
  const auto first = decode_streams(*model_, *tokenizer_, jobs[0].rows, jobs[0].streams, cfg);
  ASSERT_GE(first[0].text.size(), 3u);
  cfg.stops.strings = {first[0].text.substr(2, 1)};
  std::vector<std::vector<StreamResult>> alone;
  for (const DecodeJob& j : jobs) alone.push_back(decode_streams(*model_, *tokenizer_, j.rows, j.streams, cfg));
  ASSERT_LT(alone[0][0].ids.size(), 9u);
  for (int64_t in_flight : {2, 3, 16}) {
    std::vector<int> seen(jobs.size(), 0);
    DecodeStats stats;
    decode_jobs(*model_, *tokenizer_, jobs, cfg, in_flight,
                [&](size_t i, std::vector<StreamResult> r) {
                  ++seen[i];
                  ASSERT_EQ(r.size(), alone[i].size());
                  for (size_t s = 0; s < r.size(); ++s) {
                    EXPECT_EQ(r[s].ids, alone[i][s].ids) << "job " << i << " stream " << s << " in flight " << in_flight;
                    EXPECT_EQ(r[s].stop, alone[i][s].stop);
                  }
                },
                &stats);
    for (int n : seen) EXPECT_EQ(n, 1);
    int64_t tokens = 0;
    for (const auto& a : alone)
      for (const auto& r : a) tokens += static_cast<int64_t>(r.ids.size());
    EXPECT_EQ(stats.decode_tokens, tokens);
  }
}

// Batch invariance by construction on the CPU, bf16 and fp32: every job's ids AND every step's
// top-5 probabilities are bitwise those of the job decoded alone, whatever shares the calls (1, 3 or
// 8 jobs in flight: up to 40 rows per call), and in bf16 whatever CPU kernel path runs (portable,
// AVX2, AVX-512, AVX512-BF16: the paths this CPU can execute), so results do not depend on the machine.
TEST_F(Methods, BatchSizeAndCpuPathDoNotChangeAnyBit) {
  const std::vector<std::pair<Method, std::vector<size_t>>> specs = {
      {Method::Flex, {0, 1, 2}}, {Method::Avg, {0, 2, 3, 4}}, {Method::Max, {1, 3}}, {Method::PerPrompt, {0, 4}},
      {Method::Flex, {0, 1, 2, 3, 4}}, {Method::Origin, {2}}, {Method::WeightedAvg, {1, 2, 4}}, {Method::Flex, {3}},
      {Method::Avg, {0, 1, 2, 3, 4}}};
  DecodeConfig cfg;
  cfg.max_new_tokens = 6;
  cfg.stops.eos = cfg.stops.newline = false;
  cfg.trace_top = 5;
  std::vector<DecodeJob> jobs;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::vector<std::string> qs;
    for (size_t q : specs[i].second) qs.push_back(questions_[q]);
    MethodOptions o = opts(specs[i].first, 6);
    o.positions = i % 2 ? PositionMode::Restart : PositionMode::Sequential;
    SampleTokens st = sample(qs, i % 3 == 0);
    if (specs[i].first == Method::WeightedAvg)
      for (size_t k = 0; k < qs.size(); ++k) st.weights.push_back(1.0 + static_cast<double>(k));
    const SamplePlan plan = plan_sample(st, o, 300 + i);
    jobs.push_back(DecodeJob{plan.rows, plan.streams});
  }
  auto run_all = [&](const LlamaModel& m, int64_t in_flight) { return decode_all(m, *tokenizer_, jobs, cfg, in_flight); };
  const CpuIsa isa = cpu_isa();
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const LlamaModel m = make_tiny_model(7, dtype);
    const std::string name = dtype == at::kFloat ? "fp32" : "bf16";
    const auto alone = run_all(m, 1);
    for (int64_t in_flight : {3, 8}) expect_same_streams(run_all(m, in_flight), alone, name + ", " + std::to_string(in_flight) + " in flight");
    if (dtype == at::kBFloat16)
      for (CpuIsa path : runnable_cpu_isas()) {
        set_cpu_isa(path);
        expect_same_streams(run_all(m, 8), alone, name + " on the " + to_string(path) + " path");
      }
    set_cpu_isa(isa);
  }
}

// The run-level KV store (DecodeConfig::kv_reuse): every job's top-5 probabilities are bitwise those
// of the run without it, for every method and layout, 1 or 3 jobs in flight, block sizes that cut
// the prefix anywhere, fp32 and bf16, and with every prefix computed in a pass of its own
// (DecodeConfig::prefix_own_pass); and it does reuse. 3 in flight gives 1 in flight's bits.
TEST_F(Methods, KvStoreChangesNoBit) {
  const std::string instruction = "Answer the question based on general world knowledge.\n\n";
  const std::vector<std::pair<Method, std::vector<size_t>>> specs = {
      {Method::Flex, {0, 1, 2}}, {Method::Avg, {0, 2, 3, 4}}, {Method::Max, {1, 3}}, {Method::PerPrompt, {0, 4}},
      {Method::Flex, {0, 1, 2, 3, 4}}, {Method::Origin, {2}}, {Method::Flex, {4, 3}}, {Method::Avg, {0, 1, 2, 3, 4}}};
  std::vector<DecodeJob> jobs;
  for (size_t i = 0; i < 2 * specs.size(); ++i) {
    const auto& spec = specs[i % specs.size()];
    std::vector<std::string> qs;
    for (size_t q : spec.second) qs.push_back(questions_[q]);
    MethodOptions o = opts(spec.first, 6);
    // Flex under restart positions (copies of paraphrase 1's instruction in the others) too.
    const bool flex_restart = spec.first == Method::Flex && i >= specs.size();
    o.positions = i % 2 || flex_restart ? PositionMode::Restart : PositionMode::Sequential;
    if (spec.first == Method::Flex && i >= specs.size()) o.fusion = Fusion::SegmentLogits;
    const bool shared = i % 3 == 0;
    SampleTokens st = sample(qs, shared);
    if (!shared) {
      const std::vector<int32_t> head = tokenizer_->encode(instruction);
      size_t n = 0;
      while (n < head.size() && head[n] == st.paraphrases[0][n]) ++n;
      ASSERT_GT(n, 20u);
      st.common_prefix = static_cast<int64_t>(n);
    }
    const SamplePlan plan = plan_sample(st, o, 500 + i);
    EXPECT_GT(plan.rows[0].shared_prefix, 20);
    jobs.push_back(DecodeJob{plan.rows, plan.streams});
  }
  // Own pass: every prefix computed in a pass of its own (prefix_own_pass).
  for (const bool own_pass : {false, true})
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    if (own_pass && dtype == at::kFloat) continue;
    const LlamaModel m = make_tiny_model(5, dtype);
    for (const int64_t block : {int64_t{7}, int64_t{16}, int64_t{128}}) {
      std::vector<std::vector<StreamResult>> alone;  // 1 in flight, with the store
      for (const int64_t in_flight : {int64_t{1}, int64_t{3}}) {
        DecodeConfig cfg;
        cfg.prefix_own_pass = own_pass;
        cfg.max_new_tokens = 6;
        cfg.stops.eos = cfg.stops.newline = false;
        cfg.trace_top = 5;
        cfg.block_size = block;
        auto run_all = [&](bool reuse, DecodeStats* stats) {
          cfg.kv_reuse = reuse;
          return decode_all(m, *tokenizer_, jobs, cfg, in_flight, stats);
        };
        DecodeStats with, without;
        const auto a = run_all(true, &with), b = run_all(false, &without);
        const std::string what = std::string(dtype == at::kFloat ? "fp32" : "bf16") + ", block " +
                                 std::to_string(block) + ", " + std::to_string(in_flight) + " in flight" +
                                 (own_pass ? ", prefixes in their own pass" : "");
        EXPECT_GT(with.prefill_tokens_reused, with.prefill_tokens / 3) << what;
        EXPECT_EQ(without.prefill_tokens_reused, 0) << what;
        EXPECT_EQ(with.prefill_tokens, without.prefill_tokens) << what;
        // The restart flex jobs' paraphrases 2.. take paraphrase 1's instruction K/V, store or not.
        EXPECT_GT(with.prefill_tokens_copied, 0) << what;
        EXPECT_EQ(with.prefill_tokens_copied, without.prefill_tokens_copied) << what;
        expect_same_streams(a, b, what);
        if (::testing::Test::HasFatalFailure()) return;
        // Nor does the batch (jobs of different prompt lengths share prefill passes, each in its own layout).
        if (in_flight == 1) alone = a;
        for (size_t j = 0; j < a.size(); ++j)
          for (size_t s = 0; s < a[j].size(); ++s)
            for (size_t t = 0; t < a[j][s].trace.size(); ++t)
              EXPECT_EQ(a[j][s].trace[t].top, alone[j][s].trace[t].top) << what << " vs 1: job " << j << " step " << t;
      }
    }
  }
}

// One prefill pass for jobs of different prompt lengths: each job keeps its own layout (as alone)
// and a shorter job's rows are right-padded into the slots of its first decode tokens; the passes
// compute their tokens only (packed: norms, linears and MLP skip the padding). Every job's
// ids, texts and top-5 probabilities of every step are bitwise those of the job decoded alone
// with every slot computed, with
// 1, 3 and 8 in flight, block sizes 7/16/128 (the right padding across block boundaries), the KV
// store on and off, prefixes in their own pass or not, fp32 and bf16. Every job has a prompt length
// of its own, so fewer prefill passes than with one job in flight means jobs of different lengths
// shared a pass; neighbours further apart than max_new_tokens (and a job that needs other positions'
// logits) take passes of their own.
TEST_F(Methods, GroupedPrefillOfDifferentLengthsChangesNoBit) {
  constexpr int64_t kNew = 8;
  const std::string instruction = "Answer the question based on general world knowledge.\n\n";
  struct Spec {
    Method method;
    std::vector<size_t> questions;
    int64_t offset;  // the job's prompt length over the shortest possible
  };
  // Offsets of slot neighbours: 0..8 apart (one pass, 8 = the whole of a job's decode slots) or more.
  const std::vector<Spec> specs = {
      {Method::Origin, {2}, 0},          {Method::Avg, {0, 2, 3}, 3},   {Method::Flex, {0, 1}, 8},
      {Method::Max, {1, 3}, 6},          {Method::PerPrompt, {0, 4}, 1}, {Method::Flex, {4}, 30},
      {Method::Avg, {0, 1, 2, 3, 4}, 2}, {Method::Origin, {1}, 33},     {Method::Flex, {0, 2}, 5},
      {Method::WeightedAvg, {1, 2}, 31}, {Method::Avg, {3, 4}, 70},     {Method::Origin, {4}, 9},
      {Method::Flex, {1, 3, 4}, 13},     {Method::Max, {0, 4}, 10},     {Method::Flex, {2, 3}, 12},
      {Method::Avg, {1, 4}, 40}};
  auto plan_of = [&](size_t i, int64_t extra) {
    const Spec& spec = specs[i];
    std::vector<std::string> qs;
    for (size_t q : spec.questions) qs.push_back(questions_[q]);
    // Flex: one row of every paraphrase, longer by the first one's extra characters; the others:
    // every row longer by them.
    for (size_t k = 0; k < qs.size(); ++k)
      if (spec.method != Method::Flex || k == 0) qs[k] += std::string(static_cast<size_t>(extra), 'x');
    MethodOptions o = opts(spec.method, kNew);
    o.positions = i % 2 ? PositionMode::Restart : PositionMode::Sequential;
    if (spec.method == Method::Flex && i == 8) o.fusion = Fusion::SegmentLogits;  // other first positions
    const bool shared = i % 3 == 0;
    SampleTokens st = sample(qs, shared);
    if (spec.method == Method::WeightedAvg) st.weights = {1.0, 2.5};
    if (!shared) {
      const std::vector<int32_t> head = tokenizer_->encode(instruction);
      size_t n = 0;
      while (n < head.size() && head[n] == st.paraphrases[0][n]) ++n;
      st.common_prefix = static_cast<int64_t>(n);
    }
    return plan_sample(st, o, 700 + i);
  };
  auto prompt_len = [](const SamplePlan& p) {
    size_t n = 0;
    for (const RowPlan& r : p.rows) n = std::max(n, r.tokens.size());
    return static_cast<int64_t>(n);
  };
  int64_t base = 0;
  for (size_t i = 0; i < specs.size(); ++i) base = std::max(base, prompt_len(plan_of(i, 0)));
  std::vector<DecodeJob> jobs;
  std::set<int64_t> lengths;
  for (size_t i = 0; i < specs.size(); ++i) {
    int64_t extra = 0;
    while (prompt_len(plan_of(i, extra)) < base + specs[i].offset) ++extra;
    const SamplePlan plan = plan_of(i, extra);
    ASSERT_EQ(prompt_len(plan), base + specs[i].offset) << "job " << i;
    ASSERT_TRUE(plan.rows[0].block_sparse || specs[i].method != Method::Flex);
    lengths.insert(prompt_len(plan));
    jobs.push_back(DecodeJob{plan.rows, plan.streams});
  }
  ASSERT_EQ(lengths.size(), jobs.size()) << "every job needs a prompt length of its own";

  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const LlamaModel m = make_tiny_model(9, dtype);
    for (const int64_t block : {int64_t{7}, int64_t{16}, int64_t{128}}) {
      DecodeConfig cfg;
      cfg.max_new_tokens = kNew;
      cfg.stops.eos = cfg.stops.newline = false;
      cfg.trace_top = 5;
      cfg.block_size = block;
      cfg.kv_reuse = false;
      // Alone, and every slot of a pass computed (no packing): the reference for the packed passes.
      cfg.pack_prefill = false;
      std::vector<std::vector<StreamResult>> alone;
      for (const DecodeJob& j : jobs) alone.push_back(decode_streams(m, *tokenizer_, j.rows, j.streams, cfg));
      cfg.pack_prefill = true;
      for (const bool own_pass : {false, true})
        for (const bool reuse : {false, true}) {
          cfg.prefix_own_pass = own_pass;
          cfg.kv_reuse = reuse;
          int64_t passes_alone = 0, computed_alone = 0;
          for (const int64_t in_flight : {int64_t{1}, int64_t{3}, int64_t{8}}) {
            const std::string what = std::string(dtype == at::kFloat ? "fp32" : "bf16") + ", block " +
                                     std::to_string(block) + ", " + std::to_string(in_flight) + " in flight" +
                                     (reuse ? ", store" : "") + (own_pass ? ", prefixes in their own pass" : "");
            DecodeStats stats;
            const auto out = decode_all(m, *tokenizer_, jobs, cfg, in_flight, &stats);
            expect_same_streams(out, alone, what);
            if (::testing::Test::HasFatalFailure()) return;
            const int64_t computed = stats.prefill_tokens - stats.prefill_tokens_reused;
            if (in_flight == 1) {
              passes_alone = stats.prefill_passes;
              computed_alone = computed;
              const int64_t n = static_cast<int64_t>(jobs.size());
              // One pass a job, and one for each prefix put into the store (or each row's prefix).
              if (reuse) {
                EXPECT_EQ(stats.prefill_passes, n + stats.kv_store_entries) << what;
              } else if (own_pass) {
                EXPECT_GT(stats.prefill_passes, n) << what;
              } else {
                EXPECT_EQ(stats.prefill_passes, n) << what;
              }
            } else {
              EXPECT_LT(stats.prefill_passes, passes_alone) << what << ": no job shared a prefill pass";
              // Every job's prefix is the same one here: a group's rows take it from the store as
              // each job alone does (none is computed again in the group's pass).
              EXPECT_EQ(computed, computed_alone) << what;
            }
            if (reuse) {
              EXPECT_GT(stats.prefill_tokens_reused, stats.prefill_tokens / 4) << what;
            }
          }
        }
    }
  }
}

// Per-row last columns (LogitsMode::Last with `last`): each row's logits are bitwise those of
// LogitsMode::All at its column, from slot 0 and for a chunk after a cached prefix, fp32 and bf16,
// block-sparse and dense masks; a column outside the pass is refused.
TEST_F(Methods, PerRowLastLogitsEqualAllLogitsAtThoseColumns) {
  constexpr int64_t B = 3, L = 23, start = 5;
  at::manual_seed(3);
  const at::Tensor ids = at::randint(0, 256, {B, start + L}, at::kLong);
  const at::Tensor pos = at::arange(start + L, at::kLong).repeat({B, 1});
  const at::Tensor last = at::tensor(std::vector<int64_t>{4, L - 1, 0}, at::kLong);
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const LlamaModel m = make_tiny_model(7, dtype);
    for (const bool blocks : {false, true}) {
      const BatchMask mask = causal_rows(B, start + L, blocks);
      for (const int64_t s0 : {int64_t{0}, start}) {
        auto run = [&](LogitsMode mode, const at::Tensor& cols) {
          KVCache cache = make_kv_cache(m, B, start + L);
          if (s0 > 0) llama_forward(m, cache, ids.narrow(1, 0, s0), pos.narrow(1, 0, s0), mask, LogitsMode::Last);
          return llama_forward(m, cache, ids.narrow(1, s0, L), pos.narrow(1, s0, L), mask, mode, cols);
        };
        const at::Tensor all = run(LogitsMode::All, {});
        const at::Tensor picked = run(LogitsMode::Last, last);
        ASSERT_EQ(picked.sizes(), (std::vector<int64_t>{B, 1, all.size(2)}));
        for (int64_t b = 0; b < B; ++b)
          EXPECT_TRUE(at::equal(picked[b][0], all[b][last[b].item<int64_t>()]))
              << (dtype == at::kFloat ? "fp32" : "bf16") << (blocks ? " blocks" : " dense") << " start " << s0
              << " row " << b;
        // No `last`: the last column, as before.
        EXPECT_TRUE(at::equal(run(LogitsMode::Last, {}).select(1, 0), all.select(1, L - 1)));
        EXPECT_THROW(run(LogitsMode::Last, at::tensor(std::vector<int64_t>{0, L, 1}, at::kLong)),
                     std::invalid_argument);
        EXPECT_THROW(run(LogitsMode::Last, at::tensor(std::vector<int64_t>{0, 1}, at::kLong)), std::invalid_argument);
      }
    }
  }
}

// A packed pass (llama_forward's `real`: norms, linears and MLP on the listed columns only) gives
// every listed column the logits and cache K/V of the full pass, bit for bit: rows right-padded to
// different lengths (causal: no token sees the padding after it), from slot 0 and after a prefix
// in the cache, fp32 and bf16, dense and block-sparse attention. Bad lists are refused.
TEST_F(Methods, PackedPassesGiveTheirTokensTheBitsOfTheFullPass) {
  constexpr int64_t B = 3, L = 23, start = 5;
  const std::vector<int64_t> len = {23, 9, 16};  // tokens of each row in the pass
  at::manual_seed(5);
  const at::Tensor ids = at::randint(0, 256, {B, start + L}, at::kLong);
  const at::Tensor pos = at::arange(start + L, at::kLong).repeat({B, 1});
  std::vector<int64_t> real, lastv;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < len[b]; ++c) real.push_back(b * L + c);
    lastv.push_back(len[b] - 1);
  }
  const at::Tensor real_t = at::tensor(real, at::kLong), last = at::tensor(lastv, at::kLong);
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const LlamaModel m = make_tiny_model(7, dtype);
    for (const bool blocks : {false, true}) {
      const BatchMask mask = causal_rows(B, start + L, blocks);
      for (const int64_t s0 : {int64_t{0}, start}) {
        const std::string what = std::string(dtype == at::kFloat ? "fp32" : "bf16") + (blocks ? " blocks" : " dense") +
                                 " start " + std::to_string(s0);
        auto run = [&](LogitsMode mode, const at::Tensor& cols, const at::Tensor& r, KVCache* keep = nullptr) {
          KVCache cache = make_kv_cache(m, B, start + L);
          if (s0 > 0) llama_forward(m, cache, ids.narrow(1, 0, s0), pos.narrow(1, 0, s0), mask, LogitsMode::Last);
          at::Tensor out = llama_forward(m, cache, ids.narrow(1, s0, L), pos.narrow(1, s0, L), mask, mode, cols, r);
          if (keep) *keep = cache;
          return out;
        };
        KVCache full_cache, packed_cache;
        const at::Tensor all = run(LogitsMode::All, {}, {}, &full_cache);
        const at::Tensor packed_all = run(LogitsMode::All, {}, real_t, &packed_cache);
        const at::Tensor picked = run(LogitsMode::Last, last, real_t);
        for (int64_t b = 0; b < B; ++b) {
          EXPECT_TRUE(at::equal(picked[b][0], all[b][len[b] - 1])) << what << " row " << b;
          EXPECT_TRUE(at::equal(packed_all[b].narrow(0, 0, len[b]), all[b].narrow(0, 0, len[b]))) << what << " row " << b;
          // The cache: every slot before the pass and every listed slot of it.
          const int64_t n = s0 + len[b];
          EXPECT_TRUE(at::equal(packed_cache.k.select(1, b).narrow(2, 0, n), full_cache.k.select(1, b).narrow(2, 0, n)))
              << what << " keys of row " << b;
          EXPECT_TRUE(at::equal(packed_cache.v.select(1, b).narrow(2, 0, n), full_cache.v.select(1, b).narrow(2, 0, n)))
              << what << " values of row " << b;
        }
        // A last column the list leaves out; the same column twice; a column past the pass.
        EXPECT_THROW(run(LogitsMode::Last, at::tensor(std::vector<int64_t>{4, L - 1, 0}, at::kLong), real_t),
                     std::invalid_argument);
        EXPECT_THROW(run(LogitsMode::Last, last, at::tensor(std::vector<int64_t>{0, 0, 1}, at::kLong)),
                     std::invalid_argument);
        EXPECT_THROW(run(LogitsMode::Last, last, at::tensor(std::vector<int64_t>{0, B * L}, at::kLong)),
                     std::invalid_argument);
      }
    }
  }
}

// With reused prefixes a prefill pass is sized by the slots it computes, not by whole prompts: on
// a model whose widest linear caps a CPU pass at 256 tokens, `avg` samples of two ~95-token rows
// (59 of them the shared BOS + instruction) go one a pass without the store (2 x 95 slots) and
// three a pass with it (2 x 36 slots each), with the same records.
TEST_F(Methods, ReusedPrefixesLetMoreSamplesShareAPass) {
  const LlamaModel m = make_tiny_model(13, at::kFloat, kTinyVocab, 16, at::kCPU, 32768);
  ASSERT_EQ(DecodeState(m, DecodeStateOptions()).prefill_tokens_per_pass(), 256);
  const std::vector<int32_t> head = tokenizer_->encode("Answer the question based on general world knowledge.\n\n");
  auto fixed = [](std::string q) {  // every prompt of one length
    q.resize(32, '?');
    return q;
  };
  std::vector<DecodeJob> jobs;
  for (size_t i = 0; i < 6; ++i) {
    SampleTokens st = sample({fixed(questions_[i % 5]), fixed(questions_[(i + 2) % 5])});
    size_t n = 0;
    while (n < head.size() && head[n] == st.paraphrases[0][n]) ++n;
    st.common_prefix = static_cast<int64_t>(n);
    const SamplePlan plan = plan_sample(st, opts(Method::Avg, 4), 900 + i);
    ASSERT_EQ(plan.rows.size(), 2u);
    jobs.push_back(DecodeJob{plan.rows, plan.streams});
  }
  DecodeConfig cfg;
  cfg.max_new_tokens = 4;
  cfg.stops.eos = cfg.stops.newline = false;
  cfg.trace_top = 3;
  auto run_all = [&](bool reuse, DecodeStats* stats) {
    cfg.kv_reuse = reuse;
    return decode_all(m, *tokenizer_, jobs, cfg, 6, stats);
  };
  DecodeStats with, without;
  const auto a = run_all(true, &with), b = run_all(false, &without);
  EXPECT_EQ(without.prefill_passes, 6);
  EXPECT_EQ(with.prefill_passes, 3) << "the prefix's own pass, then two passes of three samples";
  EXPECT_GT(with.prefill_tokens_reused, 0);
  expect_same_streams(a, b, "store on / off");
}

// A decode step computes the rows up to the last one in use only (rows past it were never
// prefilled or were released), and a row's logits are the same bits whatever the step's size: a
// row alone (1 row computed) against the same row beside a busy row 2 (3 rows computed).
TEST_F(Methods, DecodeStepsComputeRowsUpToTheLastInUse) {
  DecodeStateOptions o;
  o.rows = 4;
  o.length = 16;
  DecodeState both(*model_, o), alone(*model_, o);
  const at::Tensor tokens = at::tensor(std::vector<int64_t>{5, 9, 12, 3, 7, 11, 2, 8}, at::kLong).view({2, 4});
  const at::Tensor positions = at::arange(4, at::kLong).repeat({2, 1});
  both.prefill(0, tokens.narrow(0, 0, 1), positions.narrow(0, 0, 1), {causal_mask(16)}, LogitsMode::Last);
  both.prefill(2, tokens.narrow(0, 1, 1), positions.narrow(0, 1, 1), {causal_mask(16)}, LogitsMode::Last);
  alone.prefill(0, tokens.narrow(0, 0, 1), positions.narrow(0, 0, 1), {causal_mask(16)}, LogitsMode::Last);
  for (int64_t step = 0; step < 3; ++step) {
    const std::vector<int64_t> feed = {4 + step, 0, 6 + step, 0}, pos = {4 + step, 0, 4 + step, 0},
                               slot = {4 + step, 0, 4 + step, 0};
    const at::Tensor a = both.step(feed, pos, slot), b = alone.step(feed, pos, slot);
    ASSERT_EQ(a.size(0), step < 2 ? 3 : 1) << "step " << step;
    ASSERT_EQ(b.size(0), 1);
    EXPECT_TRUE(a[0].equal(b[0])) << "step " << step << ": row 0 beside row 2 vs alone";
    if (step == 1) both.release(2, 1);
  }
}

// A stored prefix written to a run of rows: each row of the run reads back the prefix's K/V, the
// rows around it and the slots past the prefix stay as they were; ranges past the rows are refused.
TEST_F(Methods, WritePrefixFillsARunOfRowsInOneCall) {
  DecodeStateOptions o;
  o.rows = 6;
  o.length = 16;
  DecodeState s(*model_, o);
  const at::Tensor tokens = at::tensor(std::vector<int64_t>{5, 9, 12, 3, 7}, at::kLong).view({1, 5});
  s.prefill(0, tokens, at::arange(5, at::kLong).view({1, 5}), {causal_mask(16)}, LogitsMode::Last);
  const auto [k, v] = s.read_prefix(0, 4);
  const auto [k_before, v_before] = s.read_prefix(1, 16);
  s.write_prefix(2, k, v, 3);
  for (int64_t r = 2; r < 5; ++r) {
    const auto [kr, vr] = s.read_prefix(r, 4);
    EXPECT_TRUE(kr.equal(k) && vr.equal(v)) << "row " << r;
    const auto [k_all, v_all] = s.read_prefix(r, 16);
    EXPECT_EQ(k_all.narrow(2, 4, 12).abs().max().item<float>(), 0.f) << "row " << r << ": slots past the prefix";
  }
  for (const int64_t r : {int64_t{1}, int64_t{5}}) {
    const auto [kr, vr] = s.read_prefix(r, 16);
    EXPECT_TRUE(kr.equal(k_before) && vr.equal(v_before)) << "row " << r << " is outside the run";
  }
  EXPECT_THROW(s.write_prefix(4, k, v, 3), std::invalid_argument);
  EXPECT_THROW(s.write_prefix(2, k, v, 0), std::invalid_argument);
}

// On the CPU a queued step is a step (the logits are computed when it returns), copy_to_host gives
// the values as they are, and fed tokens are read from host memory.
TEST_F(Methods, QueuedStepsOnTheCpuAreSteps) {
  DecodeStateOptions o;
  o.rows = 1;
  o.length = 16;
  DecodeState a(*model_, o), b(*model_, o);
  const at::Tensor tokens = at::tensor(std::vector<int64_t>{5, 9, 12, 3}, at::kLong).view({1, 4});
  const at::Tensor positions = at::arange(4, at::kLong).view({1, 4});
  for (DecodeState* s : {&a, &b}) s->prefill(0, tokens, positions, {causal_mask(16)}, LogitsMode::Last);
  EXPECT_FALSE(a.logits_on_device());
  const at::Tensor queued = a.step_queued({7}, {4}, {4}), stepped = b.step({7}, {4}, {4});
  EXPECT_TRUE(queued.equal(stepped));
  EXPECT_TRUE(a.copy_to_host(queued).wait().equal(stepped));
  DeviceFeed feed;
  feed.ids = at::tensor(std::vector<int64_t>{11, 3}, at::kLong);
  feed.rows = {0};
  feed.index = {1};
  EXPECT_TRUE(a.step_queued({7}, {5}, {5}, &feed).equal(b.step({3}, {5}, {5})));
  feed.index = {2};
  EXPECT_THROW(a.step_queued({7}, {6}, {6}, &feed), std::invalid_argument);
}

// Overlapped steps (the scheduling of DecodeConfig::overlap_steps, run on the CPU through
// overlap_on_host): every stream's ids and stop reason are those of the step-by-step schedule for
// flex (shared context, restart), avg, per_prompt and origin jobs with 1, 3 or 8 in flight, with
// stops that end streams early and without; steps are queued ahead, none wasted at one job without
// stops.
TEST_F(Methods, OverlappedStepsChangeNoRecord) {
  std::vector<DecodeJob> jobs;
  const std::vector<Method> methods = {Method::Flex, Method::Avg,  Method::PerPrompt,   Method::Flex, Method::Origin,
                                       Method::Flex, Method::Avg,  Method::WeightedAvg, Method::PerPrompt, Method::Flex};
  for (size_t i = 0; i < methods.size(); ++i) {
    MethodOptions o = opts(methods[i]);
    if (o.method == Method::Flex && i >= 5) o.positions = PositionMode::Restart;
    const std::vector<std::string> qs(questions_.begin(), questions_.begin() + static_cast<std::ptrdiff_t>(2 + i % 3));
    SampleTokens st = sample(qs, i % 2 == 0);
    if (o.method == Method::WeightedAvg)
      for (size_t k = 0; k < qs.size(); ++k) st.weights.push_back(1.0 + static_cast<double>(k));
    const SamplePlan plan = plan_sample(st, o, 90 + i);
    jobs.push_back(DecodeJob{plan.rows, plan.streams});
  }
  expect_overlap_changes_no_record(*model_, *tokenizer_, jobs, 8,
                                   [](DecodeConfig& c, bool on) { c.overlap_on_host = on; });
}

// A grouped CPU prefill pass holds at most as many tokens as keep the widest linear's output within
// 32 MiB (beyond it the CPU linear runs ~10% slower); the tiny model's are far below that.
TEST_F(Methods, CpuPrefillPassesKeepTheWidestLinearOutputWithin32MiB) {
  DecodeStateOptions o;
  for (const at::ScalarType dtype : {at::kBFloat16, at::kFloat}) {
    LlamaModel m = make_tiny_model(7, dtype);
    EXPECT_EQ(DecodeState(m, o).prefill_tokens_per_pass(), 16384);
    m.config.intermediate_size = 8192;  // Llama-3.2-1B's MLP
    EXPECT_EQ(DecodeState(m, o).prefill_tokens_per_pass(), dtype == at::kBFloat16 ? 2048 : 1024);
  }
}

TEST_F(Methods, BadPlansAreRejected) {
  SampleTokens s = sample(questions_);
  s.paraphrases[1].clear();
  EXPECT_THROW(plan_sample(s, opts(Method::Flex), 0), std::invalid_argument);
  EXPECT_THROW(parse_method("median"), std::invalid_argument);
  EXPECT_THROW(parse_fusion("late"), std::invalid_argument);
  EXPECT_EQ(parse_method("weighted_max"), Method::WeightedMax);
}

TEST_F(Methods, BlockSparseKernelPathEqualsDensePath) {
  for (PositionMode pm : {PositionMode::Sequential, PositionMode::Restart}) {
    MethodOptions o = opts(Method::Flex, 10);
    o.positions = pm;
    SamplePlan plan = plan_sample(sample(questions_, true), o, 3);
    ASSERT_TRUE(plan.rows[0].block_sparse);
    DecodeConfig cfg;
    cfg.max_new_tokens = 10;
    cfg.stops.eos = cfg.stops.newline = false;
    cfg.trace_top = 5;
    cfg.block_size = 16;  // several full, partial and empty blocks at these lengths
    const auto sparse = decode_streams(*model_, *tokenizer_, plan.rows, plan.streams, cfg);
    plan.rows[0].block_sparse = false;
    const auto dense = decode_streams(*model_, *tokenizer_, plan.rows, plan.streams, cfg);
    EXPECT_EQ(sparse[0].ids, dense[0].ids) << to_string(pm);
    for (size_t t = 0; t < sparse[0].trace.size(); ++t)
      for (size_t i = 0; i < 5; ++i)
        EXPECT_NEAR(sparse[0].trace[t].top[i].second, dense[0].trace[t].top[i].second, 1e-5) << t;
  }
}

TEST_F(Methods, RestartParaphraseLogitsEqualEachParaphraseAlone) {
  // The spec's invariant: with restart positions each paraphrase encoded in the
  // ensemble sequence (through the block-sparse kernel) equals [BOS][context][it] alone.
  const SampleTokens s = sample(questions_, true);
  MethodOptions o = opts(Method::Flex, 1);
  o.positions = PositionMode::Restart;
  const SamplePlan plan = plan_sample(s, o, 0);
  const SequenceLayout& layout = *plan.layout;
  const RowPlan& row = plan.rows[0];
  const int64_t len = static_cast<int64_t>(row.tokens.size());
  std::vector<AttentionMask> masks = {row.mask};
  std::vector<BlockMask> blocks = {build_block_mask(row.mask, 32)};
  auto ids = at::tensor(std::vector<int64_t>(row.tokens.begin(), row.tokens.end()), at::kLong).view({1, len});
  auto pos = at::tensor(std::vector<int64_t>(row.position_ids.begin(), row.position_ids.begin() + len), at::kLong)
                 .view({1, len});
  const at::Tensor together = llama_forward_full(*model_, ids, pos, BatchMask::rows(masks, blocks));
  for (int32_t i = 0; i < layout.num_paraphrases(); ++i) {
    std::vector<int64_t> alone_ids = {*s.bos};
    alone_ids.insert(alone_ids.end(), s.shared_context.begin(), s.shared_context.end());
    alone_ids.insert(alone_ids.end(), s.paraphrases[i].begin(), s.paraphrases[i].end());
    const int64_t n = static_cast<int64_t>(alone_ids.size());
    const at::Tensor alone = llama_forward_full(*model_, at::tensor(alone_ids, at::kLong).view({1, n}),
                                                at::arange(n, at::kLong).view({1, n}), BatchMask::causal());
    const Span& span = layout.paraphrase_span(i);
    const at::Tensor mine = together[0].narrow(0, span.start, span.length());
    const at::Tensor ref = alone[0].narrow(0, n - span.length(), span.length());
    // fp32 with a different summation order (kernel tiles vs dense): relative to the logit scale.
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    EXPECT_LT((mine - ref).abs().max().item<double>() / scale, 2e-5) << "paraphrase " << i << ", scale " << scale;
  }
}

// Issue 17: the restart invariant under MyriadLAMA's few-shot sharing: each paraphrase's logits in
// the ensemble equal those of the same few-shot layout with that paraphrase alone (the shared parts
// are encoded under the few-shot rules in both).
TEST_F(Methods, RestartInvariantHoldsUnderFewShotSharing) {
  SampleTokens s = sample(questions_, true);
  const std::vector<int32_t> instruction = s.shared_context;
  FewShotSplit split;
  split.instruction = static_cast<int64_t>(instruction.size());
  for (const char* ex : {"Q: The capital of France is [MASK].\n", "A: Paris\n\n", "Q: Tokyo is in [MASK].\n",
                         "A: Japan\n\n"}) {
    const std::vector<int32_t> ids = tokenizer_->encode(ex);
    s.shared_context.insert(s.shared_context.end(), ids.begin(), ids.end());
    (ex[0] == 'Q' ? split.questions : split.answers).push_back(static_cast<int64_t>(ids.size()));
  }
  s.few_shot = split;
  MethodOptions o = opts(Method::Flex, 1);
  o.positions = PositionMode::Restart;
  auto forward = [&](const SampleTokens& x, SequenceLayout& layout) {
    const SamplePlan plan = plan_sample(x, o, 0);
    layout = *plan.layout;
    const RowPlan& row = plan.rows[0];
    const int64_t len = static_cast<int64_t>(row.tokens.size());
    std::vector<AttentionMask> masks = {row.mask};
    std::vector<BlockMask> blocks = {build_block_mask(row.mask, 32)};
    auto ids = at::tensor(std::vector<int64_t>(row.tokens.begin(), row.tokens.end()), at::kLong).view({1, len});
    auto pos = at::tensor(std::vector<int64_t>(row.position_ids.begin(), row.position_ids.begin() + len), at::kLong)
                   .view({1, len});
    return llama_forward_full(*model_, ids, pos, BatchMask::rows(masks, blocks));
  };
  SequenceLayout layout;
  const at::Tensor together = forward(s, layout);
  int32_t few_shot_groups = 0;
  for (const Group& g : layout.groups)
    few_shot_groups += g.kind == GroupKind::FewShotQuestion || g.kind == GroupKind::FewShotAnswer;
  EXPECT_EQ(few_shot_groups, 4);
  for (int32_t i = 0; i < layout.num_paraphrases(); ++i) {
    SampleTokens alone = s;
    alone.paraphrases = {s.paraphrases[i]};
    SequenceLayout alone_layout;
    const at::Tensor ref_all = forward(alone, alone_layout);
    const Span& span = layout.paraphrase_span(i);
    const Span& ref_span = alone_layout.paraphrase_span(0);
    const at::Tensor mine = together[0].narrow(0, span.start, span.length());
    const at::Tensor ref = ref_all[0].narrow(0, ref_span.start, ref_span.length());
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    EXPECT_LT((mine - ref).abs().max().item<double>() / scale, 2e-5) << "paraphrase " << i;
  }
  // The shared parts are not plain causal: an example's answer does not see the other example.
  const SamplePlan plan = plan_sample(s, o, 0);
  const AttentionMask& m = plan.rows[0].mask;
  const int64_t a2 = 1 + split.instruction + split.questions[0] + split.answers[0] + split.questions[1];
  const int64_t q1 = 1 + split.instruction;
  EXPECT_FALSE(m.allowed(a2, q1));
  EXPECT_TRUE(m.allowed(a2, a2 - 1));
}

// Flex under restart positions: paraphrases 2.. start with paraphrase 1's instruction at the same
// positions, seeing BOS and themselves, so the plan marks them as copies and the prefill copies
// paraphrase 1's K/V there instead of computing them: the records are those of computing every
// span (fp32: the same ids, first-step probabilities within 1e-5; the copies' K/V are the same
// numbers up to the kernels' summation order), with (P - 1) x the instruction's tokens copied.
// Sequential positions and a shared context make no copies.
TEST_F(Methods, RestartFlexCopiesTheFirstInstructionInsteadOfComputingIt) {
  SampleTokens st = sample(questions_);
  const std::vector<int32_t> head = tokenizer_->encode("Answer the question based on general world knowledge.\n\n");
  size_t n = 0;
  while (n < head.size() && head[n] == st.paraphrases[0][n]) ++n;
  ASSERT_GT(n, 20u);
  st.common_prefix = static_cast<int64_t>(n);
  MethodOptions o = opts(Method::Flex, 6);
  o.positions = PositionMode::Restart;
  const SamplePlan plan = plan_sample(st, o, 3);
  ASSERT_EQ(plan.rows[0].copies.size(), questions_.size() - 1);
  for (const SpanCopy& c : plan.rows[0].copies) EXPECT_EQ(c.length, static_cast<int64_t>(n));
  EXPECT_TRUE(plan_sample(st, opts(Method::Flex, 6), 3).rows[0].copies.empty());
  EXPECT_TRUE(plan_sample(sample(questions_, true), o, 3).rows[0].copies.empty());

  DecodeJob copied{plan.rows, plan.streams}, full = copied;
  full.rows[0].copies.clear();
  DecodeConfig cfg;
  cfg.max_new_tokens = 6;
  cfg.stops.eos = cfg.stops.newline = false;
  cfg.trace_top = 5;
  for (const bool reuse : {false, true}) {
    cfg.kv_reuse = reuse;
    DecodeStats with, without;
    const auto a = decode_all(*model_, *tokenizer_, {copied}, cfg, 1, &with);
    const auto b = decode_all(*model_, *tokenizer_, {full}, cfg, 1, &without);
    EXPECT_EQ(with.prefill_tokens_copied, static_cast<int64_t>((questions_.size() - 1) * n));
    EXPECT_EQ(without.prefill_tokens_copied, 0);
    EXPECT_EQ(a[0][0].ids, b[0][0].ids);
    ASSERT_EQ(a[0][0].trace.size(), b[0][0].trace.size());
    for (size_t i = 0; i < a[0][0].trace[0].top.size(); ++i) {
      EXPECT_EQ(a[0][0].trace[0].top[i].first, b[0][0].trace[0].top[i].first);
      EXPECT_NEAR(a[0][0].trace[0].top[i].second, b[0][0].trace[0].top[i].second, 1e-5);
    }
  }
  // A hint that is not a copy is refused.
  DecodeJob wrong = copied;
  wrong.rows[0].copies[0].src += 1;  // one position later: other position ids
  EXPECT_THROW(decode_all(*model_, *tokenizer_, {wrong}, cfg, 1), std::logic_error);
}

// llama_forward's K/V copies: after the pass, every layer's K and V at each destination slot are
// bitwise those at its source; copies outside the pass's rows and slots, or from a slot that is
// itself a destination, are refused.
TEST_F(Methods, KvSlotCopiesPutTheSourceKeysAndValuesAtTheDestination) {
  const int64_t L = 9;
  const at::Tensor ids = at::tensor(std::vector<int64_t>{kTinyBos, 40, 41, 42, 43, 40, 41, 42, 44}, at::kLong).view({1, L});
  const at::Tensor pos = at::arange(L, at::kLong).view({1, L});
  KvSlotCopies copies;
  for (int64_t j = 0; j < 3; ++j) {
    copies.rows.push_back(0);
    copies.src.push_back(1 + j);
    copies.dst.push_back(5 + j);
  }
  KVCache cache = make_kv_cache(*model_, 1, L);
  llama_forward(*model_, cache, ids, pos, BatchMask::causal(), LogitsMode::Last, {}, {}, copies);
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_TRUE(at::equal(cache.k.select(3, 5 + j), cache.k.select(3, 1 + j))) << "K, slot " << 5 + j;
    EXPECT_TRUE(at::equal(cache.v.select(3, 5 + j), cache.v.select(3, 1 + j))) << "V, slot " << 5 + j;
  }
  EXPECT_FALSE(at::equal(cache.k.select(3, 4), cache.k.select(3, 8)));
  auto refused = [&](KvSlotCopies c) {
    KVCache fresh = make_kv_cache(*model_, 1, L);
    EXPECT_THROW(llama_forward(*model_, fresh, ids, pos, BatchMask::causal(), LogitsMode::Last, {}, {}, c),
                 std::invalid_argument);
  };
  refused(KvSlotCopies{{1}, {1}, {5}});       // no such row
  refused(KvSlotCopies{{0}, {1}, {9}});       // past the pass
  refused(KvSlotCopies{{0}, {1}, {1}});       // onto itself
  refused(KvSlotCopies{{0, 0}, {1, 5}, {5, 6}});  // from a destination
  refused(KvSlotCopies{{0, 0}, {1}, {5}});    // sizes differ
}

// An admission puts its jobs into the free slots in order of prompt length, so that neighbouring
// slots' prompts are within max_new_tokens of each other: four `origin` jobs of alternating
// lengths (short, long, short, long; 30 characters apart, 4 new tokens) take two prefill passes
// (the two short ones, then the two long ones) instead of one each, with the same records as
// each job alone; the jobs' results come back in their own order.
TEST_F(Methods, AnAdmissionGroupsJobsOfCloseLengths) {
  std::vector<DecodeJob> jobs;
  for (size_t i = 0; i < 4; ++i) {
    std::string q = questions_[0];
    q.resize(40 + (i % 2) * 30, '?');
    const SamplePlan plan = plan_sample(sample({q}), opts(Method::Origin, 4), 950 + i);
    jobs.push_back(DecodeJob{plan.rows, plan.streams});
  }
  DecodeConfig cfg;
  cfg.max_new_tokens = 4;
  cfg.stops.eos = cfg.stops.newline = false;
  cfg.trace_top = 3;
  cfg.kv_reuse = false;
  std::vector<std::vector<StreamResult>> alone;
  for (const DecodeJob& j : jobs) alone.push_back(decode_streams(*model_, *tokenizer_, j.rows, j.streams, cfg));
  DecodeStats stats;
  expect_same_streams(decode_all(*model_, *tokenizer_, jobs, cfg, 4, &stats), alone, "4 in flight");
  EXPECT_EQ(stats.prefill_passes, 2);
}
