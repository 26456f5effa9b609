// A sample's answer, down to the last bit of every probability `debug --verbose --json` prints,
// does not depend on the CPU it ran on: every kernel path this CPU can run (FLEXGEN_CPU_ISA),
// every vector width of libtorch's own CPU kernels (ATEN_CPU_CAPABILITY, what an AVX2-only or an
// AVX-512 machine would pick), 1 or 2 threads, fp32 and bf16. Child processes, because libtorch
// reads its capability once at start.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../cli/run_command.h"
#include "../test_tmp.h"
#include "flexgen/cpu_isa.h"
#include "tiny_model_dir.h"

namespace {

using flexgen::testing::run_flexgen_env;

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("same_answer_" + name); }

TEST(CliSameAnswer, EveryCpuPathAndLibtorchVectorWidthGiveTheSameBits) {
  const std::string model = flexgen::testing::write_tiny_model_dir(tmp("model"));
  for (const std::string dtype : {"fp32", "bf16"}) {
    const std::string args = "debug -q --model '" + model + "' --dtype " + dtype +
                             " --few-shot 1 --max-samples 2 --max-new-tokens 5 --stop none --json --verbose ";
    std::vector<std::string> envs;
    for (const flexgen::CpuIsa isa : flexgen::runnable_cpu_isas())
      for (const std::string cap : {"default", "avx2", "avx512"})
        envs.push_back(std::string("FLEXGEN_CPU_ISA=") + flexgen::to_string(isa) + " ATEN_CPU_CAPABILITY=" + cap);
    std::string want;
    for (const std::string method : {"flex", "avg"})
      for (size_t i = 0; i < envs.size(); ++i)
        for (const std::string threads : {"1", "2"}) {
          const auto r = run_flexgen_env(envs[i], args + "--method " + method + " --threads " + threads, tmp("run"));
          ASSERT_EQ(r.exit_code, 0) << envs[i] << ": " << r.err;
          ASSERT_NE(r.out.find("\"probability\""), std::string::npos);
          if (i == 0 && threads == "1") {
            want = r.out;
            continue;
          }
          EXPECT_EQ(r.out, want) << dtype << " " << method << " with " << envs[i] << ", " << threads << " threads";
        }
  }
}

}  // namespace
