// A point in the current CUDA stream's work that the host can wait for (private to the CUDA
// backend and the model): waiting for it waits for the work queued before it, not for what was
// queued after (a copy back of a step's picks while the next step is already queued).
#pragma once

#include <memory>

namespace flexgen {

class CudaEvent {
 public:
  // An event of the current CUDA device. Throws std::runtime_error when built without CUDA.
  CudaEvent();
  // Marks the current stream's tail (the work queued so far on the current device).
  void record();
  // Blocks until the work before the last record() is done (returns at once if never recorded).
  void wait() const;

 private:
  std::shared_ptr<void> event_;
};

}  // namespace flexgen
