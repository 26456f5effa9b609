// The kernel files' stamp buffers (step_timeline.h).
#include "cuda/step_timeline.h"

#include <cuda_runtime.h>

#include <mutex>
#include <stdexcept>
#include <string>

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
void sync() {
  const cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) throw std::runtime_error(std::string("kernel timeline: ") + cudaGetErrorString(e));
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
  sync();
  const std::lock_guard<std::mutex> lock(units_mutex());
  for (const Unit& u : units()) u.clear();
}

std::vector<Stamp> read() {
  sync();
  std::vector<Stamp> out;
  const std::lock_guard<std::mutex> lock(units_mutex());
  for (const Unit& u : units()) u.read(out);
  return out;
}

}  // namespace cuda_timeline
}  // namespace flexgen
