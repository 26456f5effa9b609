// cpu_isa.h: the CPU's instruction-set paths, detected once at run time.
#include "flexgen/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace flexgen {
namespace {

CpuIsa detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  if (avx512 && __builtin_cpu_supports("avx512bf16")) return CpuIsa::Avx512Bf16;
  if (avx512) return CpuIsa::Avx512;
  if (avx2) return CpuIsa::Avx2;
#endif
  return CpuIsa::Portable;
}

std::atomic<int> g_selected{-1};
std::once_flag g_env_once;

}  // namespace

CpuIsa best_cpu_isa() {
  static const CpuIsa best = detect();
  return best;
}

std::vector<CpuIsa> runnable_cpu_isas() {
  std::vector<CpuIsa> out;
  for (int i = 0; i <= static_cast<int>(best_cpu_isa()); ++i) out.push_back(static_cast<CpuIsa>(i));
  return out;
}

const char* to_string(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Portable: return "portable";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
    case CpuIsa::Avx512Bf16: return "avx512bf16";
  }
  return "unknown";
}

CpuIsa parse_cpu_isa(const std::string& name) {
  for (CpuIsa isa : {CpuIsa::Portable, CpuIsa::Avx2, CpuIsa::Avx512, CpuIsa::Avx512Bf16})
    if (name == to_string(isa)) return isa;
  throw std::invalid_argument("unknown CPU kernel path '" + name + "' (expected portable, avx2, avx512 or avx512bf16)");
}

void set_cpu_isa(CpuIsa isa) {
  if (static_cast<int>(isa) > static_cast<int>(best_cpu_isa()))
    throw std::invalid_argument(std::string("this CPU cannot run the ") + to_string(isa) + " kernels (best: " +
                                to_string(best_cpu_isa()) + ")");
  g_selected = static_cast<int>(isa);
}

void clear_cpu_isa() {
  cpu_isa();  // FLEXGEN_CPU_ISA is read (once) before it is forgotten
  g_selected = -1;
}

bool cpu_isa_named() {
  cpu_isa();  // reads FLEXGEN_CPU_ISA
  return g_selected >= 0;
}

CpuIsa cpu_isa() {
  std::call_once(g_env_once, [] {
    const char* env = std::getenv("FLEXGEN_CPU_ISA");
    if (env == nullptr || *env == '\0' || g_selected >= 0) return;
    try {
      set_cpu_isa(parse_cpu_isa(env));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("FLEXGEN_CPU_ISA: ") + e.what());
    }
  });
  const int s = g_selected;
  return s >= 0 ? static_cast<CpuIsa>(s) : best_cpu_isa();
}

}  // namespace flexgen
