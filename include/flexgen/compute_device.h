// Where the model computes, decided once per process: the device a request names, bound as the
// process's current device, and the CPU threads. Every later layer takes the device from the
// loaded model (LlamaModel::device) and never decides again.
#pragma once

#include <c10/core/Device.h>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace flexgen {

// A device request that is not well formed (the caller's usage error).
struct DeviceRequestError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Reads an environment variable (std::getenv; tests pass their own).
using EnvReader = std::function<const char*(const char*)>;

// This process's place among the processes of one machine, as launchers set it: LOCAL_RANK
// (torchrun), SLURM_LOCALID (srun), OMPI_COMM_WORLD_LOCAL_RANK (Open MPI), MPI_LOCALRANKID
// (MPICH), looked at in that order. nullopt when none is set; DeviceRequestError when the first
// one set is not a number in 0 .. 65535.
struct LocalRank {
  int rank = 0;
  std::string variable;  // which variable said so
};
std::optional<LocalRank> local_rank_from_env(const EnvReader& env);

struct DeviceChoice {
  at::Device device = at::kCPU;
  std::string reason;  // why this device, for the log (e.g. "LOCAL_RANK=1")
};

// "auto": a CUDA device when this build and machine have one, else the CPU. With a local rank
// (local_rank_from_env) that device is cuda:RANK, so the ranks of one machine spread over its
// GPUs; when CUDA_VISIBLE_DEVICES gives this process exactly one GPU (as Slurm's --gpus-per-task
// does), that one (cuda:0). Without a local rank, cuda:0. "cpu", "cuda" (cuda:0) and "cuda:N"
// are taken as they are. The CUDA runtime's own CUDA_VISIBLE_DEVICES numbering applies throughout.
// Throws DeviceRequestError for a malformed request and std::runtime_error for a device that is
// not there (no CUDA build, no GPU, N or the local rank beyond the GPUs this process sees).
DeviceChoice choose_device(const std::string& request, const EnvReader& env);
DeviceChoice choose_device(const std::string& request);  // with the process's environment

// Makes `device` current for this process (CUDA), so that nothing lands on another GPU.
void bind_device(const at::Device& device);

// Loads every flexgen kernel onto `device` (the current CUDA device) now, not at its first launch
// inside a run; returns the kernels of flexgen's modules, -1 where the driver cannot load them
// ahead (CUDA < 12.4: they load at first launch), 0 on the CPU.
int preload_device_kernels(const at::Device& device);

// Intra-op threads for the CPU kernels and libtorch (it starts with 1 here); n <= 0 leaves it.
void set_cpu_threads(int n);
int cpu_threads();  // the intra-op threads in use

}  // namespace flexgen
