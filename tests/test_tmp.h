// Per-process temporary folder for tests: ctest runs test cases of one binary in
// parallel processes, so fixed names under /tmp would collide. Removed at exit.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace flexgen::testing {

class TestTmpDir {
 public:
  TestTmpDir()
      : dir_(std::filesystem::path(::testing::TempDir()) / ("flexgen-test-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~TestTmpDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// A path inside this process's temporary folder.
inline std::string tmp_path(const std::string& name) {
  static const TestTmpDir dir;
  return (dir.dir() / name).string();
}

}  // namespace flexgen::testing
