// Shards of a dataset (see shard.h).
#include "flexgen/shard.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace flexgen {

namespace {

// A non-negative decimal integer, or nullopt.
std::optional<int64_t> parse_count(const std::string& text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

Shard checked(int64_t index, int64_t count, const std::string& what) {
  if (count < 1) throw std::invalid_argument(what + ": the shard count must be at least 1");
  if (index >= count)
    throw std::invalid_argument(what + ": shard index " + std::to_string(index) + " is not below the count " +
                                std::to_string(count) + " (indexes are 0-based)");
  return Shard{index, count};
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos)
    throw std::invalid_argument("'" + text + "' is not of the form I/N (e.g. 0/4)");
  const auto index = parse_count(text.substr(0, slash));
  const auto count = parse_count(text.substr(slash + 1));
  if (!index || !count)
    throw std::invalid_argument("'" + text + "' is not of the form I/N with non-negative integers (e.g. 0/4)");
  return checked(*index, *count, "'" + text + "'");
}

Shard shard_from_environment(const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* name) -> const char* { return getenv ? getenv(name) : std::getenv(name); };
  const char* pairs[2][2] = {{"RANK", "WORLD_SIZE"}, {"SLURM_PROCID", "SLURM_NTASKS"}};
  for (const auto& pair : pairs) {
    const char* rank = get(pair[0]);
    const char* size = get(pair[1]);
    if (!rank && !size) continue;
    const std::string names = std::string(pair[0]) + "/" + pair[1];
    if (!rank || !size)
      throw std::invalid_argument(std::string(rank ? pair[0] : pair[1]) + " is set but " +
                                  (rank ? pair[1] : pair[0]) + " is not");
    const auto index = parse_count(rank);
    const auto count = parse_count(size);
    if (!index) throw std::invalid_argument(std::string(pair[0]) + "='" + rank + "' is not a non-negative integer");
    if (!count) throw std::invalid_argument(std::string(pair[1]) + "='" + size + "' is not a non-negative integer");
    return checked(*index, *count, names);
  }
  return Shard{};
}

std::string to_string(const Shard& shard) { return std::to_string(shard.index) + "/" + std::to_string(shard.count); }

std::string shard_path(const std::string& pattern, const Shard& shard) {
  std::string out;
  for (size_t at = 0; at < pattern.size();) {
    if (pattern.compare(at, 6, "{rank}") == 0) {
      out += std::to_string(shard.index);
      at += 6;
    } else if (pattern.compare(at, 7, "{world}") == 0) {
      out += std::to_string(shard.count);
      at += 7;
    } else {
      out += pattern[at++];
    }
  }
  return out;
}

void check_shard_path(Setting setting, const std::string& pattern, const Shard& shard) {
  if (shard.count <= 1 || pattern.empty() || pattern == "-" || pattern.find("{rank}") != std::string::npos) return;
  const std::filesystem::path p(pattern);
  const std::string example = (p.parent_path() / (p.stem().string() + ".{rank}" + p.extension().string())).string();
  throw InvalidSetting(setting, pattern,
                       "the " + std::to_string(shard.count) + " shards of this run would all write this one file; put " +
                           "{rank} in its name (e.g. " + example + ")");
}

std::vector<size_t> select_samples(size_t num_samples, const Shard& shard, std::optional<int64_t> max_samples) {
  if (max_samples && *max_samples < 0)
    throw std::invalid_argument("--max-samples: " + std::to_string(*max_samples) + " must not be negative");
  size_t n = num_samples;
  if (max_samples && static_cast<size_t>(*max_samples) < n) n = static_cast<size_t>(*max_samples);
  std::vector<size_t> out;
  for (size_t i = static_cast<size_t>(shard.index); i < n; i += static_cast<size_t>(shard.count)) out.push_back(i);
  return out;
}

}  // namespace flexgen
