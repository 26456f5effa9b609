// The installed tree is relocatable: `cmake --install` into a temporary prefix, the prefix moved
// elsewhere, and the moved flexgen run from another working directory finds its bundled data and its
// SentencePiece module under the new prefix (not in the build or source tree).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "../cli/run_command.h"
#include "../generate/tiny_model_dir.h"
#include "../test_tmp.h"
#include "reference.h"

namespace fs = std::filesystem;
using flexgen::testing::CommandResult;
using flexgen::testing::slurp;

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

CommandResult run_sh(const std::string& cmd, const std::string& prefix) {
  const std::string out = prefix + ".out", err = prefix + ".err";
  const int status = std::system((cmd + " >" + q(out) + " 2>" + q(err)).c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

class Installed : public ::testing::Test {
 protected:
  // One install per process, moved once: every test runs the moved tree.
  static void SetUpTestSuite() {
    const std::string staged = flexgen::testing::tmp_path("staged-prefix");
    moved_ = new std::string(flexgen::testing::tmp_path("moved/elsewhere/prefix"));
    cwd_ = new std::string(flexgen::testing::tmp_path("cwd"));
    const auto r = run_sh(std::string(q(FLEXGEN_CMAKE_COMMAND)) + " --install " + q(FLEXGEN_BUILD_DIR) +
                              " --prefix " + q(staged),
                          flexgen::testing::tmp_path("install"));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    fs::create_directories(fs::path(*moved_).parent_path());
    fs::create_directories(*cwd_);
    fs::rename(staged, *moved_);
  }
  static void TearDownTestSuite() {
    delete moved_;
    delete cwd_;
  }
  // The moved flexgen, run from an unrelated working directory with no flexgen variables set.
  static CommandResult flexgen(const std::string& args, const std::string& name) {
    return run_sh("cd " + q(*cwd_) + " && env -u FLEXGEN_DATA -u FLEXGEN_SPM_MODULE " + q(*moved_ + "/bin/flexgen") +
                      " " + args,
                  flexgen::testing::tmp_path(name));
  }
  static inline std::string* moved_ = nullptr;
  static inline std::string* cwd_ = nullptr;
};

TEST_F(Installed, LayoutHasBinaryModuleDataAndDocs) {
  const fs::path p(*moved_);
  EXPECT_TRUE(fs::is_regular_file(p / "bin/flexgen"));
  if (FLEXGEN_HAVE_SPM_MODULE) {
    EXPECT_TRUE(fs::is_regular_file(p / "lib/flexgen/libflexgen_spm.so"));
  }
  for (const char* f : {"webqa/test.jsonl", "webqa/train.jsonl", "myriadlama/test.jsonl", "myriadlama/train.jsonl"})
    EXPECT_TRUE(fs::is_regular_file(p / "share/flexgen/data" / f)) << f;
  EXPECT_TRUE(fs::is_regular_file(p / "share/bash-completion/completions/flexgen"));
  for (const char* f : {"README.md", "LICENSE", "docs/debug.md"})
    EXPECT_TRUE(fs::is_regular_file(p / "share/doc/flexgen" / f)) << f;
}

TEST_F(Installed, MaskRuns) {
  const auto r = flexgen("mask --segments 3,4 --generated 2", "mask");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST_F(Installed, GenerateReadsTheInstalledData) {
  const std::string model = flexgen::testing::write_tiny_model_dir(flexgen::testing::tmp_path("model"));
  const auto r = flexgen("generate --model " + q(model) +
                             " --dataset webqa --max-samples 1 --dtype fp32 --threads 1 --few-shot 1 --max-new-tokens 2",
                         "generate");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto record = nlohmann::json::parse(r.out);
  EXPECT_EQ(record["method"], "flex");
  const std::string data = (fs::path(*moved_) / "share/flexgen/data/webqa/test.jsonl").string();
  EXPECT_NE(r.err.find("dataset " + data), std::string::npos) << r.err;
}

TEST_F(Installed, DoctorFindsTheInstalledData) {
  const auto r = flexgen("doctor", "doctor");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok   data: " + *moved_ + "/share/flexgen/data\n"), std::string::npos) << r.out;
}

TEST_F(Installed, TokenizeLoadsTheInstalledSentencePieceModule) {
#ifdef FLEXGEN_SPM_NO_DEEPBIND
  GTEST_SKIP() << "sanitizer build: the SentencePiece module is loaded without RTLD_DEEPBIND, so libtorch's protobuf clashes with it";
#endif
  if (!FLEXGEN_HAVE_SPM_MODULE) GTEST_SKIP() << "built without libsentencepiece";
  if (std::system("command -v spm_train >/dev/null 2>&1") != 0) GTEST_SKIP() << "spm_train not installed";
  const std::string dir = flexgen::testing::tmp_path("spm");
  fs::create_directories(dir);
  const std::string model = flexgen::testing::train_spm_model(dir);
  const auto r = flexgen("tokenize --log-level debug --tokenizer " + q(model) + " 'Hello world'", "tokenize");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("SentencePiece module " + *moved_ + "/lib/flexgen/libflexgen_spm.so"), std::string::npos)
      << r.err;
}

}  // namespace
