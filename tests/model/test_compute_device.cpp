// The device choice (compute_device.h): requests, and the local rank of multi-process launches
// (torchrun, srun, mpirun) binding each process of a machine to its own GPU.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "flexgen/compute_device.h"
#include "flexgen/runtime_info.h"

using namespace flexgen;

namespace {

struct FakeEnv {
  std::map<std::string, std::string> vars;
  EnvReader reader() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

bool have_cuda() { return cuda_device_count() > 0; }

}  // namespace

TEST(LocalRank, FromTheLaunchersVariablesInOrder) {
  EXPECT_FALSE(local_rank_from_env(FakeEnv{}.reader()).has_value());
  EXPECT_FALSE(local_rank_from_env(FakeEnv{{{"LOCAL_RANK", ""}}}.reader()).has_value());
  const auto torchrun = local_rank_from_env(FakeEnv{{{"LOCAL_RANK", "3"}, {"SLURM_LOCALID", "1"}}}.reader());
  ASSERT_TRUE(torchrun.has_value());
  EXPECT_EQ(torchrun->rank, 3);
  EXPECT_EQ(torchrun->variable, "LOCAL_RANK");
  const auto slurm = local_rank_from_env(FakeEnv{{{"SLURM_LOCALID", "1"}, {"RANK", "7"}}}.reader());
  ASSERT_TRUE(slurm.has_value());
  EXPECT_EQ(slurm->rank, 1);
  EXPECT_EQ(slurm->variable, "SLURM_LOCALID");
  EXPECT_EQ(local_rank_from_env(FakeEnv{{{"OMPI_COMM_WORLD_LOCAL_RANK", "2"}}}.reader())->variable,
            "OMPI_COMM_WORLD_LOCAL_RANK");
  EXPECT_EQ(local_rank_from_env(FakeEnv{{{"MPI_LOCALRANKID", "0"}}}.reader())->rank, 0);
  for (const char* bad : {"-1", "x", "1.5", "999999", " 1"}) {
    try {
      local_rank_from_env(FakeEnv{{{"LOCAL_RANK", bad}}}.reader());
      ADD_FAILURE() << bad << " accepted";
    } catch (const DeviceRequestError& e) {
      EXPECT_NE(std::string(e.what()).find("LOCAL_RANK='" + std::string(bad) + "' is not a local rank"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(ChooseDevice, RequestsAreCheckedBeforeAnyDeviceIsLookedAt) {
  const FakeEnv env;
  EXPECT_THROW(choose_device("tpu", env.reader()), DeviceRequestError);
  EXPECT_THROW(choose_device("cuda:x", env.reader()), DeviceRequestError);
  EXPECT_THROW(choose_device("cuda:", env.reader()), DeviceRequestError);
  EXPECT_THROW(choose_device("auto", FakeEnv{{{"LOCAL_RANK", "one"}}}.reader()), DeviceRequestError);
  EXPECT_TRUE(choose_device("cpu", FakeEnv{{{"LOCAL_RANK", "1"}}}.reader()).device.is_cpu());
}

TEST(ChooseDevice, AutoWithoutAGpuIsTheCpuWhateverTheRank) {
  if (have_cuda()) GTEST_SKIP() << "this machine has a GPU";
  const DeviceChoice c = choose_device("auto", FakeEnv{{{"LOCAL_RANK", "1"}}}.reader());
  EXPECT_TRUE(c.device.is_cpu());
  EXPECT_THROW(choose_device("cuda", FakeEnv{}.reader()), std::runtime_error);
  EXPECT_THROW(choose_device("cuda:1", FakeEnv{}.reader()), std::runtime_error);
}

TEST(ChooseDevice, AutoBindsTheLocalRankToItsGpu) {
  if (!have_cuda()) GTEST_SKIP() << "no CUDA device";
  const int n = cuda_device_count();
  EXPECT_EQ(choose_device("auto", FakeEnv{}.reader()).device, at::Device(at::kCUDA, 0));
  for (int r = 0; r < n; ++r) {
    const DeviceChoice c = choose_device("auto", FakeEnv{{{"LOCAL_RANK", std::to_string(r)}}}.reader());
    EXPECT_EQ(c.device, at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(r)));
    EXPECT_EQ(c.reason, "LOCAL_RANK=" + std::to_string(r));
  }
  try {
    choose_device("auto", FakeEnv{{{"SLURM_LOCALID", std::to_string(n)}}}.reader());
    ADD_FAILURE() << "a local rank beyond the GPUs was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("local rank " + std::to_string(n) + " (SLURM_LOCALID) has no GPU"),
              std::string::npos)
        << e.what();
  }
  // The launcher gave this process one GPU: it is cuda:0 whatever the rank.
  const DeviceChoice own = choose_device("auto", FakeEnv{{{"LOCAL_RANK", "5"}, {"CUDA_VISIBLE_DEVICES", "5"}}}.reader());
  EXPECT_EQ(own.device, at::Device(at::kCUDA, 0));
  // An explicit device is taken as it is.
  EXPECT_EQ(choose_device("cuda:0", FakeEnv{{{"LOCAL_RANK", "1"}}}.reader()).device, at::Device(at::kCUDA, 0));
}
