// A point in the current CUDA stream's work that the host can wait for (private to the CUDA
// backend and the model): waiting for it waits for the work queued before it, not for what was
// queued after (a copy back of a step's picks while the next step is already queued).
#pragma once

#include <c10/core/Device.h>

#include <memory>

namespace flexgen {

class CudaEvent {
 public:
  // An event of CUDA device `device`. Throws std::runtime_error when built without CUDA.
  explicit CudaEvent(const c10::Device& device);
  // Marks the tail of the device's current stream (the work queued there so far), whichever
  // device is current.
  void record();
  // Blocks until the work before the last record() is done (returns at once if never recorded).
  void wait() const;

 private:
  c10::Device device_;
  std::shared_ptr<void> event_;
};

}  // namespace flexgen
