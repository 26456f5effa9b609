// The progress bar / log line of a run (see progress.h).
#include "progress.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace flexgen::cli {

Progress::Progress() : tty_(isatty(fileno(stderr)) != 0), start_(Clock::now()) {}

void Progress::update(size_t done, size_t total, const ScoreSummary& score) {
  if (done == last_done_ && done != 0) return;
  last_done_ = done;
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
  if (tty_) {
    const int width = 30;
    const int filled = total ? static_cast<int>(width * done / total) : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu samples, %.2f samples/s, acc %.3f, ETA %.0fs ",
                 std::string(static_cast<size_t>(filled), '=').c_str(),
                 std::string(static_cast<size_t>(width - filled), ' ').c_str(), done, total, rate, score.accuracy(),
                 eta);
    std::fflush(stderr);
    open_line_ = done != total;
    if (done == total) std::fprintf(stderr, "\n");
  } else if (secs - last_log_ >= 10.0 || done == total) {
    last_log_ = secs;
    spdlog::info("{}/{} samples, {:.2f} samples/s, accuracy {:.3f}, ETA {:.0f} s", done, total, rate,
                 score.accuracy(), eta);
  }
}

void Progress::stop() {
  if (open_line_) std::fprintf(stderr, "\n");
  open_line_ = false;
}

}  // namespace flexgen::cli
