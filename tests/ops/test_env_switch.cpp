// The CUDA kernels' environment switches (src/ops/cuda/env_switch.h): unset or empty reads as "",
// a listed value as itself, anything else is refused with the switch's name and values.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda/env_switch.h"

using flexgen::cuda_env::env_switch;

namespace {

constexpr const char* kName = "FLEXGEN_TEST_ENV_SWITCH";

TEST(EnvSwitch, UnsetEmptyAndListedValues) {
  ::unsetenv(kName);
  EXPECT_EQ(env_switch(kName, {"a", "b"}), "");
  ::setenv(kName, "", 1);
  EXPECT_EQ(env_switch(kName, {"a", "b"}), "");
  ::setenv(kName, "b", 1);
  EXPECT_EQ(env_switch(kName, {"a", "b"}), "b");
  ::unsetenv(kName);
}

TEST(EnvSwitch, OtherValuesAreRefusedNamingTheSwitchAndItsValues) {
  auto message = [](std::initializer_list<const char*> values) {
    try {
      env_switch(kName, values);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  ::setenv(kName, "B", 1);
  EXPECT_EQ(message({"a"}), "FLEXGEN_TEST_ENV_SWITCH must be a, got 'B'");
  EXPECT_EQ(message({"0", "1"}), "FLEXGEN_TEST_ENV_SWITCH must be 0 or 1, got 'B'");
  EXPECT_EQ(message({"fused", "separate", "all"}), "FLEXGEN_TEST_ENV_SWITCH must be fused, separate or all, got 'B'");
  ::setenv(kName, " a", 1);
  EXPECT_EQ(message({"a", "b"}), "FLEXGEN_TEST_ENV_SWITCH must be a or b, got ' a'");
  ::unsetenv(kName);
}

}  // namespace
