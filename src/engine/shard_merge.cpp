// Merging the shards of one run (see shard_merge.h).
#include "flexgen/shard_merge.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "flexgen/shard.h"
#include "json_message.h"

namespace flexgen {

namespace {

using nlohmann::ordered_json;

std::string format_name(OutputFormat f) { return f == OutputFormat::Csv ? "CSV" : "JSON Lines"; }

struct Part {
  std::string path;
  RecordFile file;
  int64_t shard = -1;         // -1: no records to tell
  std::set<int64_t> samples;  // sample indexes it holds
};

struct Summary {
  std::string path;
  ordered_json json;
  Shard shard;
};

Summary read_summary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw OutputFileError(path + ": cannot open the summary");
  std::stringstream ss;
  ss << in.rdbuf();
  Summary s;
  s.path = path;
  try {
    s.json = ordered_json::parse(ss.str());
  } catch (const ordered_json::exception& e) {
    throw OutputFileError(path + ": not valid JSON (" + json_message(e) + ")");
  }
  if (!s.json.is_object()) throw OutputFileError(path + ": not a flexgen summary (not a JSON object)");
  const auto it = s.json.find("shard");
  if (it == s.json.end() || !it->is_string())
    throw ShardMergeError(path + ": the summary names no shard (written by a flexgen older than `merge`)");
  try {
    s.shard = parse_shard(it->get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw ShardMergeError(path + ": shard " + e.what());
  }
  const auto stopped = s.json.find("interrupted");
  if (stopped != s.json.end() && stopped->is_boolean() && stopped->get<bool>())
    throw ShardMergeError(path + ": the run of shard " + it->get<std::string>() +
                          " was interrupted; finish it (the same command with --resume) before merging");
  return s;
}

// A number of a summary that must be there.
double number(const Summary& s, const std::string& key) {
  const auto it = s.json.find(key);
  if (it == s.json.end() || !it->is_number()) throw ShardMergeError(s.path + ": no number '" + key + "' in the summary");
  return it->get<double>();
}

int64_t count(const Summary& s, const std::string& key) {
  const auto it = s.json.find(key);
  if (it == s.json.end() || !it->is_number_integer())
    throw ShardMergeError(s.path + ": no count '" + key + "' in the summary");
  return it->get<int64_t>();
}

int64_t gcd(int64_t a, int64_t b) { return b == 0 ? a : gcd(b, a % b); }

// Parts that each hold one sample in every G > N (G: the gcd of the steps between their
// samples) are shards of a G-shard run with some missing.
void check_stride(const std::vector<Part>& parts) {
  const auto n = static_cast<int64_t>(parts.size());
  int64_t g = 0;
  const Part* example = nullptr;
  for (const Part& p : parts) {
    if (p.samples.size() < 2) continue;
    for (auto a = p.samples.begin(), b = std::next(a); b != p.samples.end(); ++a, ++b) g = gcd(g, *b - *a);
    if (!example) example = &p;
  }
  if (g <= n) return;
  const auto it = example->samples.begin();
  throw ShardMergeError(example->path + ": holds samples " + std::to_string(*it) + ", " + std::to_string(*std::next(it)) +
                        ", ...: one sample in every " + std::to_string(g) + ", as a shard of a run of " +
                        std::to_string(g) + " shards does, but " + std::to_string(n) + " part" +
                        (n == 1 ? " is" : "s are") + " given: a shard is missing");
}

// The shard of each part (from its records), checked: each shard once.
void assign_shards(std::vector<Part>& parts) {
  const auto n = static_cast<int64_t>(parts.size());
  for (Part& p : parts)
    for (const StoredRecord& s : p.file.records) p.samples.insert(*s.record.sample_index);
  check_stride(parts);
  std::map<int64_t, const Part*> by_shard;
  for (Part& p : parts) {
    int64_t first = -1;
    for (const StoredRecord& s : p.file.records) {
      const int64_t i = *s.record.sample_index;
      if (first < 0) {
        first = i;
        p.shard = i % n;
      } else if (i % n != p.shard) {
        throw ShardMergeError(p.path + ": holds samples " + std::to_string(first) + " and " + std::to_string(i) +
                              ", which a run of " + std::to_string(n) + " shards puts in different shards (sample i " +
                              "goes to shard i mod N): a part is missing or one too many, or this file is not a " +
                              "shard of this run");
      }
    }
    if (p.shard < 0) continue;
    const auto [it, fresh] = by_shard.emplace(p.shard, &p);
    if (!fresh)
      throw ShardMergeError(p.path + ": holds shard " + std::to_string(p.shard) + " of " + std::to_string(n) + ", as " +
                            it->second->path + " does: a shard given twice");
  }
  // Parts without records take the shards no other part holds (a shard may have no samples).
  int64_t next = 0;
  for (Part& p : parts) {
    if (p.shard >= 0) continue;
    while (by_shard.count(next)) ++next;
    p.shard = next++;
  }
}

// One format, one method, one paraphrase count (rows per sample for per_prompt), one seed.
std::optional<OutputFormat> check_one_run(const std::vector<Part>& parts) {
  const Part* format_from = nullptr;
  const StoredRecord* first = nullptr;
  std::map<int64_t, std::vector<const StoredRecord*>> rows;  // per_prompt: the rows of each sample
  for (const Part& p : parts) {
    if (p.file.format) {
      if (!format_from) format_from = &p;
      else if (*p.file.format != *format_from->file.format)
        throw ShardMergeError(p.path + ": is " + format_name(*p.file.format) + ", but " + format_from->path + " is " +
                              format_name(*format_from->file.format) + ": not shards of one run");
    }
    for (const StoredRecord& s : p.file.records) {
      const OutputRecord& r = s.record;
      if (!r.sample_index)
        throw ShardMergeError(s.source + ": the record has no sample_index (written by a flexgen older than " +
                              "`merge`); run this shard again to merge it");
      if (*r.sample_index < 0) throw ShardMergeError(s.source + ": sample_index must not be negative");
      if (!first) {
        first = &s;
        continue;
      }
      const OutputRecord& f = first->record;
      if (r.method != f.method)
        throw ShardMergeError(s.source + ": method " + r.method + ", but " + first->source + " has method " + f.method +
                              ": not shards of one run");
      if (r.paraphrase_index.has_value() != f.paraphrase_index.has_value() ||
          (!r.paraphrase_index && r.paraphrase_indexes.size() != f.paraphrase_indexes.size()))
        throw ShardMergeError(s.source + ": " + std::to_string(r.paraphrase_indexes.size()) + " paraphrases, but " +
                              first->source + " has " + std::to_string(f.paraphrase_indexes.size()) +
                              ": not shards of one run");
      if (r.paraphrase_seed != f.paraphrase_seed)
        throw ShardMergeError(s.source + ": another paraphrase seed than " + first->source + ": not shards of one run");
    }
  }
  return format_from ? format_from->file.format : std::nullopt;
}

// Each sample (per_prompt: each row) once, one uuid per sample.
void check_each_once(const std::vector<Part>& parts) {
  std::map<std::pair<int64_t, int64_t>, const StoredRecord*> seen;
  std::map<int64_t, const StoredRecord*> uuid_of;
  for (const Part& p : parts) {
    for (const StoredRecord& s : p.file.records) {
      const OutputRecord& r = s.record;
      const auto [it, fresh] = seen.emplace(std::make_pair(*r.sample_index, r.paraphrase_index.value_or(-1)), &s);
      if (!fresh)
        throw ShardMergeError(s.source + ": sample " + std::to_string(*r.sample_index) + " (uuid " + r.uuid + ")" +
                              (r.paraphrase_index ? " paraphrase " + std::to_string(*r.paraphrase_index) : "") +
                              " again; it is also at " + it->second->source);
      const auto [u, first] = uuid_of.emplace(*r.sample_index, &s);
      if (!first && u->second->record.uuid != r.uuid)
        throw ShardMergeError(s.source + ": sample " + std::to_string(*r.sample_index) + " has uuid " + r.uuid +
                              ", but " + u->second->source + " gives it uuid " + u->second->record.uuid);
    }
  }
}

// No sample missing between 0 and the last one, but those a shard's summary counts as skipped bad.
void check_no_gaps(const std::vector<Part>& parts, const std::map<int64_t, int64_t>& skipped_bad, bool have_summaries) {
  const auto n = static_cast<int64_t>(parts.size());
  std::set<int64_t> all;
  std::map<int64_t, const Part*> by_shard;
  for (const Part& p : parts) {
    all.insert(p.samples.begin(), p.samples.end());
    by_shard[p.shard] = &p;
  }
  if (all.empty()) return;
  std::map<int64_t, int64_t> gaps;
  for (int64_t k = 0; k < *all.rbegin(); ++k) {
    if (all.count(k)) continue;
    const int64_t shard = k % n;
    const auto allowed = skipped_bad.find(shard);
    if (++gaps[shard] <= (allowed == skipped_bad.end() ? 0 : allowed->second)) continue;
    throw ShardMergeError(by_shard.at(shard)->path + ": has no record of sample " + std::to_string(k) + " (shard " +
                          std::to_string(shard) + " of " + std::to_string(n) +
                          "): an unfinished shard (finish it with --resume)" +
                          (have_summaries ? "" : ", or a sample skipped as bad (give the summaries to count those)"));
  }
}

// The summaries, one per shard of `n`; by shard index.
std::map<int64_t, Summary> read_summaries(const std::vector<std::string>& paths, int64_t n) {
  std::map<int64_t, Summary> by_shard;
  for (const std::string& path : paths) {
    Summary s = read_summary(path);
    if (s.shard.count != n)
      throw ShardMergeError(path + ": is the summary of shard " + to_string(s.shard) + ", but " + std::to_string(n) +
                            " part" + (n == 1 ? " is" : "s are") + " given: a part is missing or one too many");
    const auto it = by_shard.find(s.shard.index);
    if (it != by_shard.end())
      throw ShardMergeError(path + ": is the summary of shard " + to_string(s.shard) + ", as " + it->second.path +
                            " is: a shard given twice");
    by_shard.emplace(s.shard.index, std::move(s));
  }
  for (int64_t i = 0; i < n; ++i)
    if (!by_shard.count(i))
      throw ShardMergeError("no summary of shard " + std::to_string(i) + "/" + std::to_string(n) +
                            " among the summaries given");
  return by_shard;
}

// Each summary's sample count and method are its part's.
void check_summaries(const std::map<int64_t, Summary>& by_shard, const std::vector<Part>& parts) {
  const auto n = static_cast<int64_t>(parts.size());
  for (const Part& p : parts) {
    const Summary& s = by_shard.at(p.shard);
    const int64_t expected = count(s, "samples") + count(s, "skipped_done");
    if (expected != static_cast<int64_t>(p.samples.size()))
      throw ShardMergeError(p.path + ": holds " + std::to_string(p.samples.size()) + " samples of shard " +
                            std::to_string(p.shard) + "/" + std::to_string(n) + ", but its summary " + s.path +
                            " counts " + std::to_string(expected) + " (samples + skipped_done)");
    if (!p.file.records.empty() && s.json.contains("method") && s.json["method"] != p.file.records.front().record.method)
      throw ShardMergeError(s.path + ": method " + s.json["method"].dump() + ", but the records of " + p.path +
                            " have method " + p.file.records.front().record.method);
  }
}

std::string merged_summary(const std::map<int64_t, Summary>& summaries, const ScoreSummary& score,
                           std::vector<std::string>& notes) {
  const std::set<std::string> summed = {"samples",       "rows",          "skipped_done", "skipped_bad",
                                        "prefill_tokens", "prefill_passes", "decode_tokens",
                                        "decode_steps"};
  const std::set<std::string> largest = {"wall_seconds", "peak_rss_bytes"};
  const std::set<std::string> rates = {"prefill_tokens_per_second", "decode_tokens_per_second"};
  const std::set<std::string> same = {"method", "dataset"};
  const auto n = static_cast<int64_t>(summaries.size());
  // Keys in the order of shard 0's summary, then any others.
  std::vector<std::string> keys;
  std::set<std::string> known;
  for (const auto& [i, s] : summaries)
    for (const auto& [k, v] : s.json.items())
      if (known.insert(k).second) keys.push_back(k);

  double wall = 0, samples = 0, steps = 0, step_ms = 0;
  for (const auto& [i, s] : summaries) {
    wall = std::max(wall, number(s, "wall_seconds"));
    samples += number(s, "samples");
    if (s.json.contains("decode_step_ms") && s.json.contains("decode_steps")) {
      steps += number(s, "decode_steps");
      step_ms += number(s, "decode_steps") * number(s, "decode_step_ms");
    }
  }
  ordered_json out = ordered_json::object();
  for (const std::string& k : keys) {
    if (k == "shard") {
      out["ranks"] = n;
    } else if (k == "accuracy") {
      out[k] = score.accuracy();
    } else if (k == "accuracy_bidirectional") {
      out[k] = score.bidirectional();
    } else if (k == "exact_match") {
      out[k] = score.exact();
    } else if (k == "samples_per_second") {
      out[k] = wall > 0 ? samples / wall : 0.0;
    } else if (k == "decode_step_ms") {
      out[k] = steps > 0 ? step_ms / steps : 0.0;
    } else if (summed.count(k) || largest.count(k) || rates.count(k)) {
      bool integral = true;
      for (const auto& [i, s] : summaries) {
        number(s, k);
        integral = integral && s.json[k].is_number_integer();
      }
      if (integral) {
        int64_t v = 0;
        for (const auto& [i, s] : summaries) v = largest.count(k) ? std::max(v, count(s, k)) : v + count(s, k);
        out[k] = v;
      } else {
        double v = 0;
        for (const auto& [i, s] : summaries) v = largest.count(k) ? std::max(v, number(s, k)) : v + number(s, k);
        out[k] = v;
      }
    } else {
      const Summary* first = nullptr;
      bool differ = false;
      for (const auto& [i, s] : summaries) {
        const auto it = s.json.find(k);
        if (!first) {
          first = &s;
          differ = it == s.json.end();
        } else {
          const auto f = first->json.find(k);
          differ = differ || it == s.json.end() || f == first->json.end() || *it != *f;
          if (differ && same.count(k))
            throw ShardMergeError(s.path + ": " + k + " " + (it == s.json.end() ? "missing" : it->dump()) + ", but " +
                                  first->path + " has " + (f == first->json.end() ? "none" : f->dump()) +
                                  ": not shards of one run");
        }
      }
      if (differ) notes.push_back("summary field '" + k + "' left out: the ranks' values differ");
      else out[k] = first->json[k];
    }
  }
  if (!out.contains("ranks")) out["ranks"] = n;
  return out.dump(2) + "\n";
}

}  // namespace

MergedShards merge_shards(const std::vector<std::string>& part_paths, const std::vector<std::string>& summary_paths) {
  if (part_paths.empty()) throw ShardMergeError("no parts to merge");
  std::vector<Part> parts;
  for (const std::string& path : part_paths) {
    Part p;
    p.path = path;
    p.file = read_record_file(path);
    parts.push_back(std::move(p));
  }
  MergedShards out;
  out.shards = static_cast<int64_t>(parts.size());
  // The summaries first: they know the shard count.
  std::map<int64_t, Summary> summaries;
  if (!summary_paths.empty()) summaries = read_summaries(summary_paths, out.shards);
  out.format = check_one_run(parts);
  assign_shards(parts);
  check_each_once(parts);
  std::map<int64_t, int64_t> skipped_bad;
  if (!summaries.empty()) {
    check_summaries(summaries, parts);
    for (const auto& [i, s] : summaries) skipped_bad[i] = count(s, "skipped_bad");
  }
  check_no_gaps(parts, skipped_bad, !summary_paths.empty());

  // Dataset order; the rows of one sample come from one part, in its order.
  std::vector<const StoredRecord*> order;
  for (const Part& p : parts)
    for (const StoredRecord& s : p.file.records) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](const StoredRecord* a, const StoredRecord* b) {
    return *a->record.sample_index < *b->record.sample_index;
  });
  for (const StoredRecord* s : order) {
    out.records.push_back(s->record);
    out.score.add(Score{s->record.correct, s->record.correct_bidirectional, s->record.exact_match});
  }
  if (!summaries.empty()) out.summary = merged_summary(summaries, out.score, out.notes);
  return out;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw OutputFileError(path + ": cannot open for writing: " + std::strerror(errno));
    f << text;
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw OutputFileError(path + ": write failed: " + std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    throw OutputFileError(path + ": cannot replace it: " + reason);
  }
}

}  // namespace flexgen
