// The kernel files' stamp buffers (step_timeline.h).
#include "cuda/step_timeline.h"

#include <cuda_runtime.h>

#include <mutex>

namespace flexgen {
namespace cuda_timeline {

namespace {
struct Unit {
  void (*clear)();
  void (*read)(std::vector<Stamp>&);
};
std::vector<Unit>& units() {
  static std::vector<Unit> u;
  return u;
}
std::mutex& units_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

bool built() {
#ifdef FLEXGEN_CUDA_TIMELINE
  return true;
#else
  return false;
#endif
}

bool register_unit(void (*clear_unit)(), void (*read_unit)(std::vector<Stamp>&)) {
  const std::lock_guard<std::mutex> lock(units_mutex());
  units().push_back(Unit{clear_unit, read_unit});
  return true;
}

void clear() {
  cudaDeviceSynchronize();
  const std::lock_guard<std::mutex> lock(units_mutex());
  for (const Unit& u : units()) u.clear();
}

std::vector<Stamp> read() {
  cudaDeviceSynchronize();
  std::vector<Stamp> out;
  const std::lock_guard<std::mutex> lock(units_mutex());
  for (const Unit& u : units()) u.read(out);
  return out;
}

}  // namespace cuda_timeline
}  // namespace flexgen
