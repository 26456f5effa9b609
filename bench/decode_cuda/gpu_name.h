// The GPU's model name without CUDA headers (libtorch 1.13 offers none outside its CUDA API): the NVIDIA
// driver's /proc/driver/nvidia/gpus/*/information.
#pragma once

#include <string>

namespace bench_decode {

// The "Model:" of the GPUs the driver lists, when they all have the same one (so it is cuda:0's too,
// whatever CUDA_VISIBLE_DEVICES picks); empty when there is no such file or the models differ.
std::string nvidia_gpu_model();

}  // namespace bench_decode
