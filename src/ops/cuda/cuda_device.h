// The CUDA device of this process (private to the CUDA backend and the model).
#pragma once

#include <c10/core/Device.h>

namespace flexgen {

// Makes `device` (CUDA, with an index) the current CUDA device of the calling thread, so work
// launched without an explicit device (libtorch's current streams, pinned buffers, graphs) goes
// there too, and reads every FLEXGEN_CUDA_* switch (std::invalid_argument for a value one does
// not take). Throws std::runtime_error when built without CUDA.
void bind_cuda_device(const at::Device& device);

// Whether the decode-step kernels launch with programmatic dependent launch: on GPUs of compute
// capability 9.0+ (the current device's), unless FLEXGEN_CUDA_PDL=0 (0 or 1). Decided once per process.
bool cuda_pdl_enabled();

}  // namespace flexgen
