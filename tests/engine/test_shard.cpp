#include <gtest/gtest.h>

#include <map>

#include "flexgen/shard.h"

using flexgen::parse_shard;
using flexgen::select_samples;
using flexgen::Shard;
using flexgen::check_shard_path;
using flexgen::InvalidSetting;
using flexgen::Setting;
using flexgen::shard_path;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

std::function<const char*(const char*)> env(std::map<std::string, std::string> vars) {
  auto held = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [held](const char* name) -> const char* {
    auto it = held->find(name);
    return it == held->end() ? nullptr : it->second.c_str();
  };
}

}  // namespace

TEST(Shard, Parses) {
  const Shard s = parse_shard("3/8");
  EXPECT_EQ(s.index, 3);
  EXPECT_EQ(s.count, 8);
  EXPECT_EQ(to_string(s), "3/8");
  EXPECT_EQ(parse_shard("0/1").count, 1);
}

TEST(Shard, BadTextIsRejected) {
  EXPECT_NE(error_of([] { parse_shard("3"); }).find("not of the form I/N"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shard("a/4"); }).find("non-negative integers"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shard("-1/4"); }).find("non-negative integers"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shard("1/"); }).find("non-negative integers"), std::string::npos);
  EXPECT_NE(error_of([] { parse_shard("4/4"); }).find("not below the count 4 (indexes are 0-based)"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_shard("0/0"); }).find("at least 1"), std::string::npos);
}

TEST(Shard, ShardsPartitionTheSamples) {
  for (int64_t count : {1, 2, 3, 7}) {
    std::vector<int> seen(20, 0);
    for (int64_t i = 0; i < count; ++i) {
      for (size_t s : select_samples(20, Shard{i, count})) {
        EXPECT_EQ(static_cast<int64_t>(s % count), i);
        ++seen[s];
      }
    }
    for (int v : seen) EXPECT_EQ(v, 1);
  }
}

TEST(Shard, MaxSamplesCutsBeforeSharding) {
  EXPECT_EQ(select_samples(10, Shard{1, 3}, 7), (std::vector<size_t>{1, 4}));
  EXPECT_EQ(select_samples(10, Shard{0, 1}, 3), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(select_samples(2, Shard{0, 1}, 30), (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(select_samples(10, Shard{0, 1}, 0).empty());
  EXPECT_NE(error_of([] { select_samples(10, Shard{}, -1); }).find("--max-samples"), std::string::npos);
}

TEST(Shard, FromEnvironment) {
  using flexgen::shard_from_environment;
  EXPECT_EQ(to_string(shard_from_environment(env({}))), "0/1");
  EXPECT_EQ(to_string(shard_from_environment(env({{"RANK", "2"}, {"WORLD_SIZE", "4"}}))), "2/4");
  EXPECT_EQ(to_string(shard_from_environment(env({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "3"}}))), "1/3");
  // torchrun's variables win over SLURM's.
  EXPECT_EQ(to_string(shard_from_environment(
                env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}}))),
            "0/2");
  EXPECT_NE(error_of([] { shard_from_environment(env({{"RANK", "1"}})); }).find("RANK is set but WORLD_SIZE is not"),
            std::string::npos);
  EXPECT_NE(error_of([] { shard_from_environment(env({{"RANK", "x"}, {"WORLD_SIZE", "2"}})); })
                .find("RANK='x' is not a non-negative integer"),
            std::string::npos);
  EXPECT_NE(error_of([] { shard_from_environment(env({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "3"}})); })
                .find("SLURM_PROCID/SLURM_NTASKS"),
            std::string::npos);
}

TEST(Shard, PathPlaceholdersAreTheShardsIndexAndCount) {
  EXPECT_EQ(shard_path("out/part.{rank}-of-{world}.jsonl", Shard{1, 4}), "out/part.1-of-4.jsonl");
  EXPECT_EQ(shard_path("{rank}{rank}.{x}", Shard{3, 8}), "33.{x}");
  EXPECT_EQ(shard_path("out.jsonl", Shard{0, 1}), "out.jsonl");
  EXPECT_EQ(shard_path("-", Shard{1, 2}), "-");
  EXPECT_EQ(shard_path("", Shard{1, 2}), "");
}

TEST(Shard, SeveralShardsMayNotShareOneFile) {
  EXPECT_NO_THROW(check_shard_path(Setting::RecordsFile, "out.jsonl", Shard{0, 1}));
  EXPECT_NO_THROW(check_shard_path(Setting::RecordsFile, "out.{rank}.jsonl", Shard{1, 2}));
  EXPECT_NO_THROW(check_shard_path(Setting::RecordsFile, "-", Shard{1, 2}));
  EXPECT_NO_THROW(check_shard_path(Setting::SummaryFile, "", Shard{1, 2}));
  try {
    check_shard_path(Setting::RecordsFile, "runs/out-{world}.jsonl", Shard{1, 2});
    FAIL();
  } catch (const InvalidSetting& e) {
    EXPECT_EQ(e.setting, Setting::RecordsFile);
    EXPECT_EQ(e.value, "runs/out-{world}.jsonl");
    EXPECT_EQ(std::string(e.what()),
              "output file runs/out-{world}.jsonl: the 2 shards of this run would all write this one file; put {rank} "
              "in its name (e.g. runs/out-{world}.{rank}.jsonl)");
  }
}
