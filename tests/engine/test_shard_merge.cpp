// Merging the result files and summaries of the shards of one run.
#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "flexgen/shard_merge.h"

using namespace flexgen;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("merge_" + name); }

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

OutputRecord record(int64_t i, const std::string& method = "flex", std::optional<int64_t> paraphrase = std::nullopt) {
  OutputRecord r;
  r.uuid = "u" + std::to_string(i);
  r.method = method;
  r.paraphrase_index = paraphrase;
  r.paraphrases = {"q" + std::to_string(i) + "?", "Q" + std::to_string(i) + "?"};
  r.paraphrase_indexes = {0, 1};
  if (paraphrase) {
    r.paraphrases = {r.paraphrases[*paraphrase]};
    r.paraphrase_indexes = {static_cast<size_t>(*paraphrase)};
  }
  r.answers = {"a" + std::to_string(i)};
  r.prediction = i % 3 ? "a" + std::to_string(i) : "no";
  r.generation = " " + r.prediction + "\nQ:";
  r.generated_ids = {1, 2, static_cast<int32_t>(i)};
  r.correct = r.correct_bidirectional = i % 3 != 0;
  r.exact_match = i % 3 == 1;
  r.prompt_tokens = 40 + i;
  r.generated_tokens = 3;
  r.segments = {{1, 20}, {20, 40}};
  r.sample_index = i;
  return r;
}

// Records of samples [0, n) (per_prompt: 2 rows each) of shard `shard` of `count`.
std::vector<OutputRecord> shard_records(int64_t n, int64_t shard, int64_t count, const std::string& method = "flex") {
  std::vector<OutputRecord> out;
  for (int64_t i = shard; i < n; i += count) {
    if (method == "per_prompt") {
      out.push_back(record(i, method, 0));
      out.push_back(record(i, method, 1));
    } else {
      out.push_back(record(i, method));
    }
  }
  return out;
}

std::string write(const std::string& name, const std::vector<OutputRecord>& records,
                  OutputFormat format = OutputFormat::Jsonl) {
  const std::string path = tmp(name);
  RecordWriter w(path, format, false);
  for (const auto& r : records) w.write(r);
  return path;
}

std::string summary(const std::string& name, const std::string& shard, int samples, double wall, int64_t rss,
                    int skipped_bad = 0, const std::string& method = "flex") {
  const std::string path = tmp(name);
  nlohmann::ordered_json j = {{"method", method},
                              {"dataset", "webqa"},
                              {"shard", shard},
                              {"samples", samples},
                              {"rows", samples},
                              {"skipped_done", 0},
                              {"skipped_bad", skipped_bad},
                              {"accuracy", 0.5},
                              {"accuracy_bidirectional", 0.5},
                              {"exact_match", 0.25},
                              {"wall_seconds", wall},
                              {"samples_per_second", samples / wall},
                              {"prefill_tokens", 100 * samples},
                              {"prefill_passes", samples / 2},
                              {"prefill_tokens_per_second", 1000.0},
                              {"decode_tokens", 3 * samples},
                              {"decode_tokens_per_second", 30.0},
                              {"decode_steps", 2 * samples},
                              {"decode_step_ms", wall},
                              {"peak_rss_bytes", rss}};
  std::ofstream(path) << j.dump(2) << "\n";
  return path;
}

std::string merge_error(const std::vector<std::string>& parts, const std::vector<std::string>& summaries = {}) {
  try {
    merge_shards(parts, summaries);
  } catch (const ShardMergeError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string text_of(const MergedShards& m) {
  std::string text = m.format == OutputFormat::Csv ? csv_header() : "";
  for (const auto& r : m.records) text += format_record(r, *m.format);
  return text;
}

}  // namespace

TEST(ShardMerge, PartsInAnyOrderGiveTheSingleRunsRecords) {
  for (OutputFormat format : {OutputFormat::Jsonl, OutputFormat::Csv}) {
    for (const std::string method : {"flex", "per_prompt"}) {
      const std::string ext = format == OutputFormat::Csv ? ".csv" : ".jsonl";
      const std::string whole = write("whole" + ext, shard_records(11, 0, 1, method), format);
      std::vector<std::string> parts;
      for (int s : {2, 0, 1}) parts.push_back(write("p" + std::to_string(s) + ext, shard_records(11, s, 3, method), format));
      const MergedShards m = merge_shards(parts);
      EXPECT_EQ(m.shards, 3);
      ASSERT_EQ(m.format, format);
      EXPECT_EQ(text_of(m), slurp(whole)) << method << ext;
      EXPECT_EQ(m.score.n, method == "per_prompt" ? 22u : 11u);
      EXPECT_EQ(m.summary, "");
    }
  }
}

TEST(ShardMerge, AShardWithNoSamplesIsFine) {
  const std::vector<std::string> parts = {write("s0.jsonl", shard_records(2, 0, 3)), write("s1.jsonl", shard_records(2, 1, 3)),
                                          write("s2.jsonl", shard_records(2, 2, 3))};
  EXPECT_EQ(merge_shards(parts).records.size(), 2u);
}

TEST(ShardMerge, SummariesMergeIntoOne) {
  const std::vector<std::string> parts = {write("m0.jsonl", shard_records(7, 0, 2)), write("m1.jsonl", shard_records(7, 1, 2))};
  const std::vector<std::string> sums = {summary("m1.json", "1/2", 3, 4.0, 300), summary("m0.json", "0/2", 4, 5.0, 200)};
  const MergedShards m = merge_shards(parts, sums);
  const auto j = nlohmann::ordered_json::parse(m.summary);
  EXPECT_EQ(j["ranks"], 2);
  EXPECT_FALSE(j.contains("shard"));
  EXPECT_EQ(j["samples"], 7);
  EXPECT_EQ(j["rows"], 7);
  EXPECT_EQ(j["prefill_tokens"], 700);
  EXPECT_EQ(j["prefill_passes"], 3);  // summed: 3 / 2 + 4 / 2
  EXPECT_EQ(j["decode_tokens"], 21);
  EXPECT_DOUBLE_EQ(j["wall_seconds"].get<double>(), 5.0);
  EXPECT_DOUBLE_EQ(j["samples_per_second"].get<double>(), 7 / 5.0);
  EXPECT_EQ(j["peak_rss_bytes"], 300);
  EXPECT_DOUBLE_EQ(j["prefill_tokens_per_second"].get<double>(), 2000.0);
  EXPECT_DOUBLE_EQ(j["decode_step_ms"].get<double>(), (8 * 5.0 + 6 * 4.0) / 14);
  // Accuracy over every record: samples 1, 2, 4, 5 of 0..6 are correct.
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 4.0 / 7);
  EXPECT_DOUBLE_EQ(j["exact_match"].get<double>(), 2.0 / 7);
  EXPECT_EQ(j["method"], "flex");
  EXPECT_EQ(j["dataset"], "webqa");
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys.at(2), "ranks");  // where the summaries had "shard"
  EXPECT_TRUE(m.notes.empty());
}

TEST(ShardMerge, RefusesWhatIsNotTheShardsOfOneRun) {
  const std::string p0 = write("r0.jsonl", shard_records(7, 0, 2)), p1 = write("r1.jsonl", shard_records(7, 1, 2));
  const std::string q0 = write("q0.jsonl", shard_records(7, 0, 3));
  // A shard missing: parts 0 and 1 of a 3-shard run.
  EXPECT_EQ(merge_error({q0, write("q1.jsonl", shard_records(7, 1, 3))}),
            q0 + ": holds samples 0, 3, ...: one sample in every 3, as a shard of a run of 3 shards does, but 2 parts "
                 "are given: a shard is missing");
  // Parts of different shard counts.
  EXPECT_EQ(merge_error({q0, p1}),
            q0 + ": holds samples 0 and 3, which a run of 2 shards puts in different shards (sample i goes to shard i "
                 "mod N): a part is missing or one too many, or this file is not a shard of this run");
  // A shard given twice.
  const std::string p0_copy = write("r0copy.jsonl", shard_records(7, 0, 2));
  EXPECT_EQ(merge_error({p0, p0_copy}), p0_copy + ": holds shard 0 of 2, as " + p0 + " does: a shard given twice");
  // Shards of different methods.
  const std::string avg1 = write("avg1.jsonl", shard_records(7, 1, 2, "avg"));
  EXPECT_EQ(merge_error({p0, avg1}), avg1 + ":1: method avg, but " + p0 + ":1 has method flex: not shards of one run");
  // An unfinished shard: its last records are missing.
  auto cut = shard_records(7, 1, 2);
  cut.pop_back();
  const std::string short1 = write("short1.jsonl", cut);
  EXPECT_EQ(merge_error({p0, short1}),
            short1 + ": has no record of sample 5 (shard 1 of 2): an unfinished shard (finish it with --resume), or a "
                     "sample skipped as bad (give the summaries to count those)");
  // A sample twice in one part.
  auto twice = shard_records(7, 1, 2);
  twice.push_back(twice.front());
  const std::string twice1 = write("twice1.jsonl", twice);
  EXPECT_EQ(merge_error({p0, twice1}), twice1 + ":4: sample 1 (uuid u1) again; it is also at " + twice1 + ":1");
  // Different formats.
  const std::string csv1 = write("r1.csv", shard_records(7, 1, 2), OutputFormat::Csv);
  EXPECT_EQ(merge_error({p0, csv1}), csv1 + ": is CSV, but " + p0 + " is JSON Lines: not shards of one run");
  // Records without sample_index (an older flexgen).
  auto old = shard_records(7, 1, 2);
  for (auto& r : old) r.sample_index.reset();
  const std::string old1 = write("old1.jsonl", old);
  EXPECT_EQ(merge_error({p0, old1}), old1 + ":1: the record has no sample_index (written by a flexgen older than "
                                            "`merge`); run this shard again to merge it");
}

TEST(ShardMerge, SummariesMustMatchTheParts) {
  const std::string p0 = write("t0.jsonl", shard_records(7, 0, 2)), p1 = write("t1.jsonl", shard_records(7, 1, 2));
  const std::string s0 = summary("t0.json", "0/2", 4, 5.0, 1), s1 = summary("t1.json", "1/2", 3, 5.0, 1);
  EXPECT_EQ(merge_error({p0, p1}, {s0}), "no summary of shard 1/2 among the summaries given");
  EXPECT_EQ(merge_error({p0, p1}, {s0, s0}), s0 + ": is the summary of shard 0/2, as " + s0 + " is: a shard given twice");
  const std::string s3 = summary("t3.json", "1/3", 3, 5.0, 1);
  EXPECT_EQ(merge_error({p0, p1}, {s0, s3}),
            s3 + ": is the summary of shard 1/3, but 2 parts are given: a part is missing or one too many");
  const std::string wrong = summary("t1wrong.json", "1/2", 2, 5.0, 1);
  EXPECT_EQ(merge_error({p0, p1}, {s0, wrong}),
            p1 + ": holds 3 samples of shard 1/2, but its summary " + wrong + " counts 2 (samples + skipped_done)");
  const std::string avg = summary("t1avg.json", "1/2", 3, 5.0, 1, 0, "avg");
  EXPECT_EQ(merge_error({p0, p1}, {s0, avg}), avg + ": method \"avg\", but the records of " + p1 + " have method flex");
  // A sample skipped as bad is no gap when its shard's summary counts it.
  auto skipped = shard_records(7, 1, 2);
  skipped.erase(skipped.begin() + 1);  // sample 3
  const std::string k1 = write("k1.jsonl", skipped);
  EXPECT_EQ(merge_error({p0, k1}).substr(0, k1.size() + 28), k1 + ": has no record of sample 3 ");
  const MergedShards m = merge_shards({p0, k1}, {s0, summary("k1.json", "1/2", 2, 5.0, 1, 1)});
  EXPECT_EQ(m.records.size(), 6u);
  EXPECT_EQ(nlohmann::json::parse(m.summary)["skipped_bad"], 1);
  // The summary of an interrupted run: its shard is not finished.
  auto stopped = nlohmann::ordered_json::parse(slurp(s1));
  stopped["interrupted"] = true;
  const std::string i1 = tmp("i1.json");
  std::ofstream(i1) << stopped.dump(2) << "\n";
  EXPECT_EQ(merge_error({p0, p1}, {s0, i1}),
            i1 + ": the run of shard 1/2 was interrupted; finish it (the same command with --resume) before merging");
}

TEST(ShardMerge, WritesAtomically) {
  const std::string path = tmp("atomic.txt");
  std::ofstream(path) << "old";
  write_file_atomically(path, "new\n");
  EXPECT_EQ(slurp(path), "new\n");
  try {
    write_file_atomically("/nonexistent/dir/x.jsonl", "x");
    FAIL();
  } catch (const OutputFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/nonexistent/dir/x.jsonl: cannot open for writing", 0), 0u) << e.what();
  }
}
