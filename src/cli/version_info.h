// What `flexgen --version` prints: the facts a bug report needs (version, commit, libtorch, CUDA, CPU kernels).
#pragma once

#include <string>

namespace flexgen::cli {

// Several lines, each "name: value", the first "flexgen VERSION"; ends with a newline-free last line.
std::string version_text();
// "avx2 (runnable: portable, avx2)": the CPU kernel path in use and those this CPU can run, plus
// "; bf16 calls of 4+ rows: avx512 (measured faster)" where bf16_linear_isa picks another path;
// throws std::invalid_argument when FLEXGEN_CPU_ISA names an unknown or unrunnable path.
std::string cpu_kernels_text();

}  // namespace flexgen::cli
