// The GPU model from the NVIDIA driver's /proc files (gpu_name.h).
#include "gpu_name.h"

#include <filesystem>
#include <fstream>
#include <set>

namespace bench_decode {

std::string nvidia_gpu_model() {
  namespace fs = std::filesystem;
  std::set<std::string> models;
  std::error_code ec;
  for (fs::directory_iterator it("/proc/driver/nvidia/gpus", ec), end; !ec && it != end; it.increment(ec)) {
    std::ifstream in(it->path() / "information");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Model:", 0) != 0) continue;
      const size_t first = line.find_first_not_of(" \t", 6);
      const size_t last = line.find_last_not_of(" \t\r");
      if (first != std::string::npos) models.insert(line.substr(first, last - first + 1));
    }
  }
  return models.size() == 1 ? *models.begin() : std::string();
}

}  // namespace bench_decode
