// timeline.h.
#include "timeline.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>

namespace bench_decode {

namespace {

std::string kind_name(int kind) {
  using namespace flexgen::cuda_timeline;
  if (kind == kAttention) return "attention";
  if (kind == kNorm) return "rms_norm";
  if (kind == kAddNorm) return "add_rms_norm";
  if (kind == kLinear) return "linear";
  if (kind == kLinear + 1) return "linear+silu";
  if (kind == kLinear + 2) return "linear+rope";
  return "kind " + std::to_string(kind);
}

struct Launch {
  int kind = 0, n = 0;
  uint64_t first_waited = std::numeric_limits<uint64_t>::max(), last_end = 0;
};

}  // namespace

nlohmann::ordered_json timeline_summary(const std::vector<flexgen::cuda_timeline::Stamp>& stamps) {
  std::map<std::pair<int, const void*>, Launch> by_launch;
  for (const auto& s : stamps) {
    Launch& l = by_launch[{s.kind, s.id}];
    l.kind = s.kind;
    l.n = s.n;
    l.first_waited = std::min(l.first_waited, s.waited);
    l.last_end = std::max(l.last_end, s.end);
  }
  std::vector<Launch> launches;
  for (const auto& [key, l] : by_launch) launches.push_back(l);
  std::sort(launches.begin(), launches.end(),
            [](const Launch& a, const Launch& b) { return a.first_waited < b.first_waited; });
  struct Sum {
    int launches = 0;
    double span = 0, post = 0, release = 0;
  };
  std::vector<std::pair<std::pair<int, int>, Sum>> kinds;  // first-seen order
  for (size_t i = 0; i < launches.size(); ++i) {
    const Launch& l = launches[i];
    const double prev_end = i > 0 ? static_cast<double>(launches[i - 1].last_end) : static_cast<double>(l.first_waited);
    auto it = std::find_if(kinds.begin(), kinds.end(), [&](const auto& k) { return k.first == std::make_pair(l.kind, l.n); });
    if (it == kinds.end()) it = kinds.insert(kinds.end(), {{l.kind, l.n}, Sum{}});
    Sum& s = it->second;
    ++s.launches;
    s.span += (static_cast<double>(l.last_end) - prev_end) / 1e3;
    s.post += (static_cast<double>(l.last_end) - static_cast<double>(l.first_waited)) / 1e3;
    s.release += i > 0 ? (static_cast<double>(l.first_waited) - prev_end) / 1e3 : 0.0;
  }
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  double total = 0;
  for (const auto& [key, s] : kinds) {
    total += s.span;
    rows.push_back({{"kernel", kind_name(key.first)},
                    {"n", key.second},
                    {"launches", s.launches},
                    {"span_us", s.span / s.launches},
                    {"post_us", s.post / s.launches},
                    {"release_us", s.release / s.launches}});
  }
  return {{"what", "one graph-replayed decode step, per-CTA %globaltimer stamps (FLEXGEN_CUDA_TIMELINE build); span = "
                   "a launch's last CTA end minus the previous launch's, post = its end minus its first return "
                   "from the wait, release = that return minus the previous launch's end; means over the "
                   "launches of a kind"},
          {"stamps", stamps.size()},
          {"sum_of_spans_us", total},
          {"kernels", rows}};
}

void write_stamps(const std::string& path, const std::vector<flexgen::cuda_timeline::Stamp>& stamps) {
  std::ofstream f(path);
  if (!f) throw std::runtime_error("--timeline " + path + ": cannot open for writing");
  f << "# kind n id cta sm start waited end (ns, %globaltimer)\n";
  char id[32];
  for (const auto& s : stamps) {
    std::snprintf(id, sizeof id, "%p", s.id);
    f << s.kind << ' ' << s.n << ' ' << id << ' ' << s.cta << ' ' << s.sm << ' ' << s.start << ' ' << s.waited << ' '
      << s.end << '\n';
  }
  if (!f) throw std::runtime_error("--timeline " + path + ": write failed");
}

}  // namespace bench_decode
