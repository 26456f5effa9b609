// compute_device.h: the one place where the device is chosen and bound.
#include "flexgen/compute_device.h"

#include <ATen/Parallel.h>

#include <cstdlib>

#include "cuda/block_sparse_attention_cuda.h"
#include "cuda/cuda_device.h"
#include "cuda/kernel_preload.h"
#include "flexgen/runtime_info.h"

namespace flexgen {

std::optional<LocalRank> local_rank_from_env(const EnvReader& env) {
  for (const char* name : {"LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"}) {
    const char* value = env(name);
    if (value == nullptr || *value == '\0') continue;
    const std::string v = value;
    if (v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos || std::stoi(v) > 65535)
      throw DeviceRequestError(std::string(name) + "='" + v + "' is not a local rank (a number in 0 .. 65535)");
    return LocalRank{std::stoi(v), name};
  }
  return std::nullopt;
}

namespace {

// CUDA_VISIBLE_DEVICES names exactly one device (the launcher gave this process its GPU).
bool one_visible_device(const EnvReader& env) {
  const char* v = env("CUDA_VISIBLE_DEVICES");
  return v != nullptr && *v != '\0' && std::string(v).find(',') == std::string::npos;
}

std::string visible_note(const EnvReader& env) {
  const char* v = env("CUDA_VISIBLE_DEVICES");
  return v != nullptr ? std::string(" (CUDA_VISIBLE_DEVICES=") + v + ")" : std::string();
}

}  // namespace

DeviceChoice choose_device(const std::string& request, const EnvReader& env) {
  const bool wants_cuda = request == "cuda" || request.rfind("cuda:", 0) == 0;
  if (request != "auto" && request != "cpu" && !wants_cuda)
    throw DeviceRequestError("unknown device '" + request + "' (expected auto, cpu, cuda or cuda:N)");
  int index = 0;
  if (request.rfind("cuda:", 0) == 0) {
    const std::string n = request.substr(5);
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 4)
      throw DeviceRequestError("'" + request + "' (expected cuda:N with N a device number)");
    index = std::stoi(n);
  }
  const std::optional<LocalRank> local = request == "auto" ? local_rank_from_env(env) : std::nullopt;
  const bool have_cuda = cuda_available() && cuda_block_sparse_attention_available();
  if (request == "cpu") return {at::Device(at::kCPU), "asked for"};
  if (request == "auto" && !have_cuda) return {at::Device(at::kCPU), "no CUDA device"};
  if (!have_cuda)
    throw std::runtime_error(cuda_available() ? std::string("this flexgen was built without CUDA kernels")
                                              : "this machine has no CUDA device, or this flexgen (libtorch " +
                                                    torch_version() + ") was built without CUDA");
  const int count = cuda_device_count();
  std::string reason = "asked for";
  if (local) {
    if (one_visible_device(env)) {
      index = 0;
      reason = local->variable + "=" + std::to_string(local->rank) + ", its one visible GPU" + visible_note(env);
    } else {
      if (local->rank >= count)
        throw std::runtime_error("local rank " + std::to_string(local->rank) + " (" + local->variable +
                                 ") has no GPU: this process sees " + std::to_string(count) + " CUDA device(s)" +
                                 visible_note(env));
      index = local->rank;
      reason = local->variable + "=" + std::to_string(local->rank);
    }
  } else if (request == "auto") {
    reason = "the first CUDA device";
  }
  if (index >= count)
    throw std::runtime_error("this machine has " + std::to_string(count) + " CUDA device(s)" + visible_note(env));
  return {at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index)), reason};
}

DeviceChoice choose_device(const std::string& request) {
  return choose_device(request, [](const char* name) { return static_cast<const char*>(std::getenv(name)); });
}

void bind_device(const at::Device& device) {
  if (device.is_cuda()) bind_cuda_device(device.has_index() ? device : at::Device(at::kCUDA, 0));
}

int preload_device_kernels(const at::Device& device) {
  if (!device.is_cuda()) return 0;
  const KernelPreload p = preload_cuda_kernels();
  return p.supported ? p.kernels : -1;
}

int cpu_threads() { return at::get_num_threads(); }

void set_cpu_threads(int n) {
  if (n > 0) at::set_num_threads(n);
}

}  // namespace flexgen
