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
    const std::string args = "debug -q --device cpu --model '" + model + "' --dtype " + dtype +
                             " --few-shot 1 --max-samples 2 --max-new-tokens 5 --stop none --json --verbose ";
    // Each kernel path once, with libtorch's vector widths and the thread counts spread over them.
    const std::vector<flexgen::CpuIsa> isas = flexgen::runnable_cpu_isas();
    const char* caps[] = {"default", "avx2", "avx512"};
    for (const std::string method : {"flex", "avg"}) {
      std::string want;
      for (size_t i = 0; i <= isas.size(); ++i) {
        // i == 0: the default environment (the CPU's best path and libtorch's own choice).
        const std::string env = i == 0 ? std::string("FLEXGEN_UNUSED=1")
                                       : std::string("FLEXGEN_CPU_ISA=") + flexgen::to_string(isas[i - 1]) +
                                             " ATEN_CPU_CAPABILITY=" + caps[(i - 1) % 3];
        const std::string threads = i % 2 == 0 ? "1" : "2";
        const auto r = run_flexgen_env(env, args + "--method " + method + " --threads " + threads, tmp("run"));
        ASSERT_EQ(r.exit_code, 0) << env << ": " << r.err;
        ASSERT_NE(r.out.find("\"probability\""), std::string::npos);
        if (i == 0)
          want = r.out;
        else
          EXPECT_EQ(r.out, want) << dtype << " " << method << " with " << env << ", " << threads << " threads";
      }
    }
  }
}

}  // namespace
