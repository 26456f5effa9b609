// A test fixture base for the CPU kernel tests that switch the instruction-set path or the thread
// count: it restores both after each test.
#pragma once

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "flexgen/cpu_isa.h"

namespace flexgen::testing {

class CpuPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    isa_ = cpu_isa();
    threads_ = at::get_num_threads();
  }
  void TearDown() override {
    set_cpu_isa(isa_);
    at::set_num_threads(threads_);
  }

  CpuIsa isa_ = CpuIsa::Portable;  // as the test found them
  int threads_ = 1;
};

}  // namespace flexgen::testing
