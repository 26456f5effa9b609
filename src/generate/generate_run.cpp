#include "flexgen/generate_run.h"
#include "flexgen/tokenizer_chat.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "flexgen/few_shot_pool.h"
#include "flexgen/jsonl_writer.h"
#include "flexgen/scoring.h"
#include "flexgen/setting_error.h"

namespace flexgen {

namespace {

using Clock = std::chrono::steady_clock;

bool is_weighted(Method m) { return m == Method::WeightedAvg || m == Method::WeightedMax; }

// The token ids of each sample (one JSON line each), as the run feeds them to the model.
class TokensWriter {
 public:
  explicit TokensWriter(const std::string& path) : path_(path) {
    if (path.empty()) return;
    try {
      // A path "-" has always named a file here (stdout carries the records).
      out_.emplace(path == "-" ? "./-" : path);
    } catch (const OutputFileError& e) {
      fail(e);
    }
  }
  // No-op without a path.
  void write(const PreparedSample& p) {
    if (!out_) return;
    const SampleTokens& t = p.tokens;
    nlohmann::json j = {{"uuid", p.sample->uuid},
                        {"bos", t.bos ? nlohmann::json(*t.bos) : nlohmann::json(nullptr)},
                        {"shared_context", t.shared_context},
                        {"paraphrases", t.paraphrases},
                        {"separator", t.separator}};
    try {
      out_->write_line(j.dump());
    } catch (const OutputFileError& e) {
      fail(e);
    }
  }
  void close() { out_.reset(); }

 private:
  // The writer's "<path>: <problem>" as an error about the token ids file.
  [[noreturn]] void fail(const OutputFileError& e) const {
    std::string problem = e.what();
    for (const std::string& name : {path_, std::string("./-")})
      if (problem.rfind(name + ": ", 0) == 0) problem = problem.substr(name.size() + 2);
    throw SettingError<std::runtime_error>(Setting::TokenIdsFile, path_, problem);
  }
  std::string path_;
  std::optional<JsonlWriter> out_;
};

// "[0, 2, 4]"
std::string index_list(const std::vector<size_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

// The model fingerprint in a run's JSON text ("" when absent or not JSON).
std::string fingerprint_of(const std::string& run) {
  if (run.empty()) return "";
  const nlohmann::json j = nlohmann::json::parse(run, nullptr, false);
  if (!j.is_object() || !j.contains("model_fingerprint") || !j["model_fingerprint"].is_string()) return "";
  return j["model_fingerprint"].get<std::string>();
}

// Resuming: every record kept in the output must be a result of this run's configuration, as
// far as the record tells: its method, its model (when it says which), a sample of the dataset,
// and (checked per sample by check_kept_paraphrases) the paraphrases this run picks.
class KeptRecords {
 public:
  KeptRecords(const std::vector<StoredRecord>& kept, const RunOptions& o, const Dataset& ds) {
    const std::string method = to_string(o.method.method);
    const std::string fingerprint = fingerprint_of(o.record_run);
    std::set<std::string> uuids;
    for (const Sample& s : ds.samples) uuids.insert(s.uuid);
    for (const StoredRecord& k : kept) {
      const OutputRecord& r = k.record;
      if (r.method != method)
        fail(k, "a record of method '" + r.method + "'; this run's method is '" + method + "'");
      if ((o.method.method == Method::PerPrompt) != r.paraphrase_index.has_value())
        fail(k, r.paraphrase_index ? "a per-paraphrase record (paraphrase_index) in a run of method " + method
                                   : "no paraphrase_index, which every record of method per_prompt has");
      const std::string theirs = fingerprint_of(r.run);
      if (!theirs.empty() && !fingerprint.empty() && theirs != fingerprint)
        fail(k, "a record of another model (fingerprint " + theirs + "; this run's model has " + fingerprint + ")");
      if (!uuids.count(r.uuid)) fail(k, "uuid " + r.uuid + " is not a sample of dataset " + ds.path);
      by_uuid_[r.uuid].push_back(&k);
    }
  }
  // The records kept for a prepared sample use the paraphrases this run picks for it.
  void check(const PreparedSample& p, Method method) const {
    const auto it = by_uuid_.find(p.sample->uuid);
    if (it == by_uuid_.end()) return;
    const std::vector<size_t>& want = p.prompts.paraphrases.indexes;
    for (const StoredRecord* k : it->second) {
      const OutputRecord& r = k->record;
      bool ok = r.paraphrase_indexes == want;
      if (method == Method::PerPrompt)
        ok = r.paraphrase_indexes.size() == 1 && static_cast<int64_t>(r.paraphrase_indexes[0]) == *r.paraphrase_index &&
             std::find(want.begin(), want.end(), r.paraphrase_indexes[0]) != want.end();
      if (!ok)
        fail(*k, "paraphrases " + index_list(r.paraphrase_indexes) + " of uuid " + r.uuid + "; this run uses " +
                     index_list(want));
    }
  }

 private:
  [[noreturn]] static void fail(const StoredRecord& k, const std::string& what) {
    throw OutputFileError(k.source + ": " + what +
                          "; not a result of this run's configuration, cannot resume this file "
                          "(give another output file, or the settings that wrote it)");
  }
  std::map<std::string, std::vector<const StoredRecord*>> by_uuid_;
};

}  // namespace

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

SamplePreparer::SamplePreparer(const RunOptions& options, const Tokenizer& tokenizer,
                               const std::vector<Sample>& pool, WeightTable weights)
    : options_(options),
      tokenizer_(tokenizer),
      // A pool smaller than --few-shot is an error only for records that need one (load_run_inputs
      // checks); prompt records use no few-shot block.
      builder_(pool, pool.size() < options.few_shot ? 0 : options.few_shot, options.few_shot_seed),
      weights_(std::move(weights)),
      separator_ids_(tokenizer.encode(options.separator)) {
  if (options.chat) user_turn_wrap(tokenizer);  // a tokenizer without a known chat format fails here, once
}

std::vector<int32_t> SamplePreparer::encode(const std::string& text) const { return tokenizer_.encode(text); }

PreparedSample SamplePreparer::prepare(const Sample& sample, uint64_t seed) const {
  PreparedSample p;
  p.sample = &sample;
  p.prompts = builder_.build(sample, options_.selection);
  SampleTokens& t = p.tokens;
  t.bos = tokenizer_.bos_id();
  std::vector<int32_t> head, tail;
  if (options_.chat) {  // LLaMA-3 headers or ChatML (Qwen2), as the tokenizer's special tokens say
    const ChatWrap wrap = user_turn_wrap(tokenizer_);
    head = encode(wrap.head);
    tail = encode(wrap.tail);
  }
  auto with_chat = [&](std::vector<int32_t> ids, bool first, bool last) {
    if (first) ids.insert(ids.begin(), head.begin(), head.end());
    if (last) ids.insert(ids.end(), tail.begin(), tail.end());
    return ids;
  };
  const bool split = options_.shared_context && !p.prompts.shared.empty();
  if (split && p.prompts.few_shot) {
    // MyriadLAMA: the instruction and each example's question and answer lines become their own
    // groups (the reference's few-shot-sharing rules), encoded piece by piece.
    const FewShotPieces& f = *p.prompts.few_shot;
    FewShotSplit cut;
    t.shared_context = with_chat(encode(f.instruction), true, false);
    cut.instruction = static_cast<int64_t>(t.shared_context.size());
    for (size_t e = 0; e < f.questions.size(); ++e) {
      for (const std::string* piece : {&f.questions[e], &f.answers[e]}) {
        const std::vector<int32_t> ids = encode(*piece);
        t.shared_context.insert(t.shared_context.end(), ids.begin(), ids.end());
        (piece == &f.questions[e] ? cut.questions : cut.answers).push_back(static_cast<int64_t>(ids.size()));
      }
    }
    t.few_shot = std::move(cut);
  } else if (split) {
    t.shared_context = with_chat(encode(p.prompts.shared), true, false);
  }
  for (size_t i = 0; i < p.prompts.parts.size(); ++i) {
    t.paraphrases.push_back(split ? with_chat(encode(p.prompts.parts[i]), false, true)
                                  : with_chat(encode(p.prompts.full(i)), true, true));
  }
  if (!split && !p.prompts.shared.empty()) {
    // The instruction + few-shot block every paraphrase starts with (the same for each sample of
    // the run): as many leading ids as all paraphrases share with its own encoding.
    const std::vector<int32_t> shared = with_chat(encode(p.prompts.shared), true, false);
    size_t common = shared.size();
    for (const std::vector<int32_t>& para : t.paraphrases) {
      size_t n = 0;
      while (n < common && n < para.size() && para[n] == shared[n]) ++n;
      common = n;
    }
    t.common_prefix = static_cast<int64_t>(common);
  }
  t.separator = separator_ids_;
  if (is_weighted(options_.method.method)) {
    auto row = weights_.find(sample.uuid);
    if (row == weights_.end())
      throw SampleError(sample.source + " (uuid " + sample.uuid + "): no weights in " + options_.weights_file);
    for (size_t idx : p.prompts.paraphrases.indexes) {
      auto w = row->second.find(idx);
      if (w == row->second.end())
        throw SampleError(sample.source + " (uuid " + sample.uuid + "): no weight for paraphrase " + std::to_string(idx));
      t.weights.push_back(w->second);
    }
    if (std::all_of(t.weights.begin(), t.weights.end(), [](double w) { return w == 0; }))
      throw SampleError(sample.source + " (uuid " + sample.uuid + "): the weights of paraphrases " +
                        index_list(p.prompts.paraphrases.indexes) + " in " + options_.weights_file +
                        " are all zero (their weighted mean is undefined)");
  }
  p.plan = plan_sample(t, options_.method, seed);
  return p;
}

std::vector<OutputRecord> make_records(const PreparedSample& p, const std::vector<StreamResult>& results,
                                       Method method, uint64_t paraphrase_seed) {
  const Sample& s = *p.sample;
  const PredictionRule rule = s.kind == SampleKind::MaskFill ? PredictionRule::FirstWord : PredictionRule::FirstLine;
  std::vector<OutputRecord> out;
  for (size_t i = 0; i < results.size(); ++i) {
    const StreamResult& r = results[i];
    OutputRecord rec;
    rec.uuid = s.uuid;
    rec.method = to_string(method);
    rec.sample_index = p.sample_index;
    if (method == Method::PerPrompt) {
      rec.paraphrase_index = static_cast<int64_t>(p.prompts.paraphrases.indexes[i]);
      rec.paraphrases = {p.prompts.paraphrases.texts[i]};
      rec.paraphrase_indexes = {p.prompts.paraphrases.indexes[i]};
    } else {
      rec.paraphrases = p.prompts.paraphrases.texts;
      rec.paraphrase_indexes = p.prompts.paraphrases.indexes;
    }
    if (s.kind == SampleKind::MaskFill) rec.paraphrase_seed = paraphrase_seed;
    rec.answers = s.answers;
    rec.generation = r.text;
    rec.prediction = extract_prediction(r.text, rule);
    rec.generated_ids = r.ids;
    const Score score = score_prediction(rec.prediction, s.answers);
    rec.correct = score.correct;
    rec.correct_bidirectional = score.correct_bidirectional;
    rec.exact_match = score.exact_match;
    rec.generated_tokens = static_cast<int64_t>(r.ids.size());
    if (p.plan.layout) {
      rec.prompt_tokens = p.plan.layout->generation_start;
      for (int32_t k = 0; k < p.plan.layout->num_paraphrases(); ++k) {
        const Span& sp = p.plan.layout->paraphrase_span(k);
        rec.segments.emplace_back(sp.start, sp.end);
      }
    } else {
      const auto& stream_rows = p.plan.streams[i].rows;
      for (int32_t row : stream_rows) {
        const int64_t len = static_cast<int64_t>(p.plan.rows[row].tokens.size());
        rec.prompt_tokens += len;
        rec.segments.emplace_back(0, len);
      }
    }
    out.push_back(std::move(rec));
  }
  return out;
}

void check_run_options(const RunOptions& o) {
  o.selection.validate();
  if (is_weighted(o.method.method) && o.weights_file.empty())
    throw InvalidSetting(Setting::Weights, "", "method " + to_string(o.method.method) + " needs them");
}

void check_model_limits(const RunOptions& o, const ModelConfig& c) {
  const int64_t context = c.max_position_embeddings;
  if (o.method.max_new_tokens >= context)
    throw InvalidSetting(Setting::MaxNewTokens, std::to_string(o.method.max_new_tokens),
                         "the model's context is " + std::to_string(context) + " positions (" + c.source +
                             "), prompt included");
  if (o.decode.block_size > context)
    throw InvalidSetting(Setting::BlockSize, std::to_string(o.decode.block_size),
                         "larger than the model's context of " + std::to_string(context) + " positions (" + c.source +
                             ")");
}

RunInputs load_run_inputs(const RunOptions& o) {
  check_run_options(o);
  RunInputs in;
  in.files = resolve_dataset(o.dataset, o.data_dir);
  DatasetReadOptions read_options;
  read_options.skip_bad = o.skip_bad;
  in.dataset = read_dataset(in.files.test, read_options);
  for (const std::string& m : in.dataset.skipped) spdlog::warn("skipped: {}", m);
  in.pool = read_few_shot_pool(in.files, o.train);
  const auto& samples = in.dataset.samples;
  const bool needs_pool = std::any_of(samples.begin(), samples.end(),
                                      [](const Sample& s) { return s.kind != SampleKind::RawPrompts; });
  if (needs_pool && o.few_shot > 0 && in.pool.size() < o.few_shot)
    throw InvalidSetting(Setting::FewShotCount, std::to_string(o.few_shot),
                         "the few-shot pool has " + std::to_string(in.pool.size()) + " records");
  if (!o.weights_file.empty()) in.weights = read_weights(o.weights_file);
  return in;
}

DecodeConfig run_decode_config(const RunOptions& o, const LlamaModel& model, const Tokenizer& tokenizer) {
  DecodeConfig decode = o.decode;
  decode.max_new_tokens = o.method.max_new_tokens;
  decode.stops.eos_ids.assign(model.config.eos_token_ids.begin(), model.config.eos_token_ids.end());
  if (decode.stops.eos_ids.empty() && tokenizer.eos_id()) decode.stops.eos_ids.push_back(*tokenizer.eos_id());
  if (tokenizer.eos_id()) decode.pad_id = *tokenizer.eos_id();
  return decode;
}

RunSummary run_generate(const RunOptions& o, const LlamaModel& model, const Tokenizer& tokenizer) {
  const auto t0 = Clock::now();
  RunSummary summary;
  check_model_limits(o, model.config);
  RunInputs in = load_run_inputs(o);
  const DatasetFiles& files = in.files;
  const Dataset& ds = in.dataset;

  const std::vector<size_t> indices = select_samples(ds.samples.size(), o.shard, o.max_samples);
  summary.total = static_cast<int64_t>(indices.size());
  auto stop_asked = [&] { return o.interrupted && o.interrupted(); };
  spdlog::info("dataset {}: {} records, {} in this run (shard {})", files.test, ds.samples.size(), indices.size(),
               to_string(o.shard));
  const DecodeConfig decode = run_decode_config(o, model, tokenizer);

  SamplePreparer preparer(o, tokenizer, in.pool, std::move(in.weights));
  if (!preparer.builder().few_shot_block().empty())
    spdlog::debug("few-shot block:\n{}", preparer.builder().few_shot_block());
  auto progress = [&](size_t done) {
    if (o.on_progress) o.on_progress(done, indices.size(), summary.score);
  };
  size_t handled = 0;

  auto keys_of = [&](const PreparedSample& p) {
    std::vector<std::string> keys;
    const std::string method = to_string(o.method.method);
    if (o.method.method == Method::PerPrompt) {
      for (size_t idx : p.prompts.paraphrases.indexes)
        keys.push_back(record_key(p.sample->uuid, method, static_cast<int64_t>(idx)));
    } else {
      keys.push_back(record_key(p.sample->uuid, method));
    }
    return keys;
  };

  // Every sample to run, prepared up front (tokenizing is cheap next to decoding).
  std::vector<PreparedSample> prepared;
  for (size_t idx : indices) {
    if (stop_asked()) break;
    const Sample& sample = ds.samples[idx];
    PreparedSample p;
    try {
      p = preparer.prepare(sample, o.seed + idx);
      p.sample_index = static_cast<int64_t>(idx);
      int64_t top = 0;
      for (const RowPlan& r : p.plan.rows) top = std::max(top, *std::max_element(r.position_ids.begin(), r.position_ids.end()));
      if (model.config.max_position_embeddings > 0 && top >= model.config.max_position_embeddings)
        throw SampleError(sample.source + " (uuid " + sample.uuid + "): the prompt and " +
                          std::to_string(decode.max_new_tokens) + " new tokens need " + std::to_string(top + 1) +
                          " positions; the model's context is " + std::to_string(model.config.max_position_embeddings));
    } catch (const SampleError& e) {
      if (!o.skip_bad) throw;
      spdlog::warn("skipped: {}", e.what());
      ++summary.skipped_bad;
      ++handled;
      continue;
    }
    prepared.push_back(std::move(p));
  }
  if (stop_asked()) {  // before the output is opened: nothing of it is touched
    summary.interrupted = true;
    summary.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    summary.peak_rss_bytes = peak_rss_bytes();
    return summary;
  }
  // The output: resuming, the records already there must be results of this configuration
  // (checked before the file is touched).
  RecordWriter writer(o.output, o.format, o.resume, [&](const std::vector<StoredRecord>& kept_records) {
    const KeptRecords kept(kept_records, o, ds);
    for (const PreparedSample& p : prepared) kept.check(p, o.method.method);
  });
  if (o.resume && writer.resumed_records() > 0)
    spdlog::info("resuming: {} rows already in {}{}", writer.resumed_records(), o.output,
                 writer.cut_bytes() ? " (a half-written last line was cut)" : "");
  TokensWriter tokens_out(o.save_tokens);
  std::vector<PreparedSample> todo;
  for (PreparedSample& p : prepared) {
    const std::vector<std::string> keys = keys_of(p);
    if (std::all_of(keys.begin(), keys.end(), [&](const std::string& k) { return writer.done(k); })) {
      ++summary.skipped_done;
      ++handled;
      continue;
    }
    tokens_out.write(p);
    todo.push_back(std::move(p));
  }
  prepared.clear();
  tokens_out.close();
  progress(handled);

  // Decode with up to --batch-size samples in flight; records are written in dataset order. The
  // plans' rows and streams move to the decoder's jobs and come back once a sample is finished
  // (the decoder never reads a finished job again); both are released once its records are out.
  std::vector<DecodeJob> jobs(todo.size());
  for (size_t i = 0; i < todo.size(); ++i)
    jobs[i] = DecodeJob{std::move(todo[i].plan.rows), std::move(todo[i].plan.streams)};
  std::vector<std::optional<std::vector<StreamResult>>> finished(todo.size());
  size_t written = 0;
  auto on_done = [&](size_t i, std::vector<StreamResult> results) {
    finished[i] = std::move(results);
    for (; written < todo.size() && finished[written]; ++written) {
      PreparedSample& p = todo[written];
      p.plan.rows = std::move(jobs[written].rows);
      p.plan.streams = std::move(jobs[written].streams);
      for (OutputRecord& rec : make_records(p, *finished[written], o.method.method, o.selection.seed)) {
        if (writer.done(record_key(rec.uuid, rec.method, rec.paraphrase_index))) continue;
        rec.run = o.record_run;
        writer.write(rec);
        summary.score.add(Score{rec.correct, rec.correct_bidirectional, rec.exact_match});
        ++summary.rows;
      }
      finished[written].reset();
      p.plan = SamplePlan();
      ++summary.samples;
      ++handled;
      progress(handled);
    }
  };
  DecodeConfig run_decode = decode;
  run_decode.should_stop = stop_asked;
  try {
    decode_jobs(model, tokenizer, jobs, run_decode, o.batch_size, on_done, &summary.stats);
  } catch (const JobError& e) {
    const Sample& s = *todo.at(e.job).sample;
    throw std::runtime_error(s.source + " (uuid " + s.uuid + "): " + e.what() + "; model " + model.config.source);
  }
  summary.interrupted = handled < indices.size() && stop_asked();
  if (!summary.interrupted) progress(indices.size());
  summary.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  summary.peak_rss_bytes = peak_rss_bytes();
  return summary;
}

}  // namespace flexgen
