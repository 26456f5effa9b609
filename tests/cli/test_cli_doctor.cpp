// `flexgen --version` and `flexgen doctor`: the exact shape of their output and doctor's exit codes.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "../test_tmp.h"
#include "run_command.h"

using flexgen::testing::run_flexgen;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("doctor_" + name); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

const std::string kIsa = "(portable|avx2|avx512|avx512bf16)";
const std::string kKernels =
    kIsa + " \\(runnable: portable(, " + kIsa + ")*\\)(; bf16 calls of 4\\+ rows: " + kIsa + " \\(measured faster\\))?";

// The doctor's lines: "ok   NAME: DETAIL" or "FAIL NAME: DETAIL", always these checks in this order.
void expect_doctor_shape(const std::vector<std::string>& lines) {
  const std::vector<std::string> names = {"threads", "cpu kernels", "blas", "cuda", "data", "hf cache"};
  ASSERT_EQ(lines.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i)
    EXPECT_TRUE(std::regex_match(lines[i], std::regex("(ok   |FAIL )" + names[i] + ": .+"))) << lines[i];
}

}  // namespace

TEST(CliVersion, NamesVersionCommitTorchCudaAndKernels) {
  const auto r = run_flexgen("--version", tmp("version"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  EXPECT_TRUE(std::regex_match(lines[0], std::regex("flexgen [0-9]+\\.[0-9]+\\.[0-9]+"))) << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], std::regex("commit: ([0-9a-f]{4,40}|unknown)"))) << lines[1];
  EXPECT_TRUE(std::regex_match(lines[2], std::regex("libtorch: [0-9]+\\.[0-9]+.*"))) << lines[2];
  EXPECT_TRUE(std::regex_match(lines[3], std::regex("CUDA: (not built in|built in, [0-9]+ device\\(s\\) seen)")))
      << lines[3];
  EXPECT_TRUE(std::regex_match(lines[4], std::regex("CPU kernels: " + kKernels))) << lines[4];
  EXPECT_TRUE(std::regex_match(lines[5], std::regex("build: .+"))) << lines[5];
}

TEST(CliDoctor, AllChecksPassInTheBuildTree) {
  const auto r = run_flexgen("doctor", tmp("ok"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto lines = lines_of(r.out);
  expect_doctor_shape(lines);
  for (const auto& l : lines) EXPECT_EQ(l.rfind("ok   ", 0), 0u) << l;
  EXPECT_TRUE(std::regex_match(lines[1], std::regex("ok   cpu kernels: " + kKernels + "; compute dtypes bf16, fp32"))) << lines[1];
  EXPECT_TRUE(std::regex_match(lines[4], std::regex("ok   data: /.+"))) << lines[4];
}

TEST(CliDoctor, FailingChecksAreNamedAndExitOne) {
  const auto bad = flexgen::testing::run_flexgen_env("FLEXGEN_DATA=/nonexistent/flexgen-data FLEXGEN_CPU_ISA=bogus",
                                                     "doctor", tmp("fail"));
  EXPECT_EQ(bad.exit_code, 1);
  const auto lines = lines_of(bad.out);
  expect_doctor_shape(lines);
  EXPECT_EQ(lines[1].rfind("FAIL cpu kernels: ", 0), 0u) << lines[1];
  EXPECT_EQ(lines[4], "FAIL data: FLEXGEN_DATA=/nonexistent/flexgen-data: no such folder");
  EXPECT_EQ(lines[0].rfind("ok   ", 0), 0u) << lines[0];
  EXPECT_NE(bad.err.find("doctor: failed: cpu kernels, data"), std::string::npos) << bad.err;
}

TEST(CliDoctor, HfCacheFollowsTheEnvironment) {
  const auto r = flexgen::testing::run_flexgen_env("HF_HUB_CACHE=/nonexistent/hub", "doctor", tmp("hf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = lines_of(r.out);
  expect_doctor_shape(lines);
  EXPECT_EQ(lines[5].rfind("ok   hf cache: /nonexistent/hub (absent)", 0), 0u) << lines[5];
}
