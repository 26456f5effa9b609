// bench_decode_cuda's yardsticks: the GPU's memory bandwidth measured in the same run, with libtorch's own
// kernels: device-to-device copy (read + write) and a full reduction (read only); and its dense
// matmul rate (cuBLAS through at::matmul).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace bench_decode {

struct Limits {
  double copy_gbps = 0;     // median over runs; bytes = 2 x buffer (read + write), 1e9 bytes/s
  double read_gbps = 0;     // median over runs; bytes = buffer
  double buffer_bytes = 0;  // each buffer
  int runs = 0;
  int ops_per_run = 0;
  std::vector<double> copy_runs_gbps, read_runs_gbps;
  nlohmann::ordered_json to_json() const;
};

// Two bf16 buffers of `buffer_bytes` each on `device`: copy bandwidth of dst.copy_(src), read bandwidth
// of at::sum(src) into fp32; each run times `ops_per_run` operations back to back, after one untimed
// operation of each kind.
Limits measure_limits(const at::Device& device, int64_t buffer_bytes, int runs, int ops_per_run);

// TFLOP/s of at::matmul of two [8192, 8192] `dtype` matrices of random values on `device`: the best
// of 5 runs of 5 products (after one untimed).
double matmul_tflops(const at::Device& device, at::ScalarType dtype);

}  // namespace bench_decode
