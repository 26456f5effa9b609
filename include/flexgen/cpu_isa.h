// Which instruction-set path the CPU kernels run, chosen at run time from what the CPU reports
// (one binary for every x86-64): the best one by default, a lower one on request (tests and A/B
// measurements run every path the machine can execute). Torch-free.
#pragma once

#include <string>
#include <vector>

namespace flexgen {

enum class CpuIsa {
  Portable,    // plain C++ (any CPU; the reference the others must equal)
  Avx2,        // AVX2 + FMA + F16C
  Avx512,      // AVX-512 F/BW
  Avx512Bf16,  // AVX-512 F/BW + AVX512_BF16 (vdpbf16ps)
};

// The best path this CPU can run.
CpuIsa best_cpu_isa();
// Every path this CPU can run, from Portable up to best_cpu_isa().
std::vector<CpuIsa> runnable_cpu_isas();
// The path the kernels use now: best_cpu_isa(), or FLEXGEN_CPU_ISA (read once; an unknown name or
// a path this CPU cannot run is an error when first asked), or the last set_cpu_isa().
CpuIsa cpu_isa();
// Selects a path; std::invalid_argument when this CPU cannot run it.
void set_cpu_isa(CpuIsa isa);
// Whether the path was named (FLEXGEN_CPU_ISA or set_cpu_isa) rather than left to best_cpu_isa().
bool cpu_isa_named();
// Forgets a named path (FLEXGEN_CPU_ISA is not read again): best_cpu_isa() with bf16_linear_isa's
// choice, what runs when nothing is named (benchmarks measure it beside the named paths).
void clear_cpu_isa();
// Rows from which a bf16 linear call is compute-bound (one register block of the CPU kernels).
constexpr long long kLinearManyRows = 4;
// The path of the bf16 linear layers' kernels for a call of `rows` rows: cpu_isa(), except that
// when the path was not named and is avx512bf16, calls of kLinearManyRows rows or more run the
// avx512 FMA kernels if those measured faster on this CPU (once, one thread, operands in L1: CPUs
// whose vdpbf16ps issues at half the FMA rate). Every path computes the same bits.
CpuIsa bf16_linear_isa(long long rows);
// "portable", "avx2", "avx512", "avx512bf16".
const char* to_string(CpuIsa isa);
// The inverse of to_string; std::invalid_argument for another name.
CpuIsa parse_cpu_isa(const std::string& name);

}  // namespace flexgen
