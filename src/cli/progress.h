// A run's progress on stderr: a bar when stderr is a terminal, otherwise a log line every 10 s.
#pragma once

#include <chrono>
#include <cstddef>

#include "flexgen/scoring.h"

namespace flexgen::cli {

class Progress {
 public:
  // The clock (samples/s, ETA) starts now.
  Progress();
  // `done` of `total` samples handled; `score` is the accuracy so far. Repeats of a
  // non-zero `done` draw nothing.
  void update(size_t done, size_t total, const ScoreSummary& score);
  // The run stopped before `total`: ends the bar's line, so that what follows starts a line.
  void stop();

 private:
  using Clock = std::chrono::steady_clock;
  bool tty_;
  Clock::time_point start_;
  double last_log_ = 0;
  size_t last_done_ = 0;
  bool open_line_ = false;  // a bar is drawn without its line end
};

}  // namespace flexgen::cli
