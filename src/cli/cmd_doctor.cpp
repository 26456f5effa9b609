// `flexgen doctor`: checks the runtime this binary finds, one line per check
// ("ok   name: detail" or "FAIL name: detail"); exit 0 when all pass, 1 naming the failed ones.
#include <spdlog/spdlog.h>

#include <iostream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "commands.h"
#include "flexgen/build_info.h"
#include "flexgen/compute_device.h"
#include "flexgen/dataset.h"
#include "flexgen/model_path.h"
#include "flexgen/runtime_info.h"
#include "version_info.h"

namespace flexgen::cli {

namespace {

struct Check {
  std::string name;
  bool ok;
  std::string detail;
};

Check check_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return {"threads", cores > 0,
          std::to_string(cores) + " cores (generate uses all unless --threads); libtorch default intra-op threads " +
              std::to_string(cpu_threads())};
}

Check check_cpu_kernels() {
  try {
    return {"cpu kernels", true, cpu_kernels_text() + "; compute dtypes bf16, fp32"};
  } catch (const std::exception& e) {
    return {"cpu kernels", false, e.what()};
  }
}

Check check_blas() {
  const std::string blas = blas_library();
  return {"blas", !blas.empty() && blas != "unknown", blas};
}

Check check_cuda() {
  if (!FLEXGEN_CUDA_BUILT) return {"cuda", true, "not built in (CPU only)"};
  const int n = cuda_device_count();
  return {"cuda", true,
          std::to_string(n) + " device(s) seen" + (n == 0 ? " (generate runs on the CPU)" : "; compute dtypes bf16, fp16")};
}

Check check_data() {
  try {
    return {"data", true, find_data_dir()};
  } catch (const std::exception& e) {
    return {"data", false, e.what()};
  }
}

Check check_hf_cache() {
  std::string detail;
  for (const auto& dir : hf_hub_cache_dirs()) {
    std::error_code ec;
    detail += (detail.empty() ? "" : ", ") + dir.string() + (std::filesystem::is_directory(dir, ec) ? "" : " (absent)");
  }
  return {"hf cache", true, detail.empty() ? "no location (set HF_HUB_CACHE, HF_HOME or HOME)" : detail};
}

int run_doctor() {
  const std::vector<Check> checks = {check_threads(), check_cpu_kernels(), check_blas(),
                                     check_cuda(),    check_data(),        check_hf_cache()};
  std::string failed;
  for (const Check& c : checks) {
    std::cout << (c.ok ? "ok   " : "FAIL ") << c.name << ": " << c.detail << "\n";
    if (!c.ok) failed += (failed.empty() ? "" : ", ") + c.name;
  }
  std::cout.flush();
  if (failed.empty()) return 0;
  spdlog::error("doctor: failed: {}", failed);
  return 1;
}

}  // namespace

Command add_doctor_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "doctor", "Check the runtime: threads, CPU kernels, BLAS, CUDA, bundled data, HF cache (exit 1 if one fails)");
  return Command{app, [] { return run_doctor(); }};
}

}  // namespace flexgen::cli
