// Per-process temporary folder for tests: ctest runs test cases of one binary in
// parallel processes, so fixed names under /tmp would collide. Removed at exit.
#pragma once

#include <ftw.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include <filesystem>
#include <string>

namespace flexgen::testing {

// Removes a folder tree. Not std::filesystem::remove_all: a pip-installed libtorch
// exports a broken copy of it that binaries linked with that libtorch bind to
// (seen with torch 2.11: a call to address 0).
inline void remove_tree(const std::string& path) {
  nftw(
      path.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return std::remove(p); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

class TestTmpDir {
 public:
  TestTmpDir()
      : dir_(std::filesystem::path(::testing::TempDir()) / ("flexgen-test-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~TestTmpDir() { remove_tree(dir_.string()); }
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
