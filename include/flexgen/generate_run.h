// The main job: dataset -> prompts -> token ids -> method plans -> decode ->
// scored output records and a summary. The CLI's `generate` is a thin front end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flexgen/dataset.h"
#include "flexgen/decoder.h"
#include "flexgen/llama.h"
#include "flexgen/methods.h"
#include "flexgen/output_records.h"
#include "flexgen/paraphrase_weights.h"
#include "flexgen/prompt.h"
#include "flexgen/scoring.h"
#include "flexgen/shard.h"
#include "flexgen/tokenizer.h"

namespace flexgen {

struct RunOptions {
  // Data and prompts.
  std::string dataset = "webqa";
  std::string data_dir;          // empty = $FLEXGEN_DATA / bundled
  std::string train;             // few-shot pool file; empty = the dataset's own
  size_t few_shot = 5;
  uint64_t few_shot_seed = 42;
  ParaphraseSelection selection;
  std::string separator = kDefaultSeparator;  // already unescaped
  bool shared_context = false;
  bool chat = false;
  std::optional<int64_t> max_samples;
  Shard shard;
  bool skip_bad = false;
  std::string weights_file;      // weighted_* methods
  // Method and decoding.
  MethodOptions method;
  DecodeConfig decode;           // stops (eos ids are filled from the model), sampling, block size
  uint64_t seed = 0;
  // What reproduces the run, as a JSON object's text, copied into every record (OutputRecord::run).
  std::string record_run;
  int64_t batch_size = 1;       // samples in flight (continuous batching)
  // Output.
  std::string output = "-";
  OutputFormat format = OutputFormat::Jsonl;
  bool resume = false;
  std::string save_tokens;       // also write each sample's token ids (JSONL) here
  // Progress: `done` of `total` samples handled (run now, already in the output, or skipped
  // as bad) and the score so far. Called after the samples are prepared, after each
  // sample's records are written, and once at the end; none = silent.
  std::function<void(size_t done, size_t total, const ScoreSummary& score)> on_progress;
  // Asked between samples and between decode steps (none = never): true stops the run. Every
  // sample whose records are written is whole; the samples in flight are dropped (a later
  // --resume runs them) and RunSummary::interrupted is set.
  std::function<bool()> interrupted;
};

struct RunSummary {
  int64_t samples = 0;          // samples run now
  int64_t rows = 0;             // output rows written now
  int64_t skipped_done = 0;     // samples already in the output (--resume)
  int64_t skipped_bad = 0;      // bad samples skipped (--skip-bad)
  int64_t total = 0;            // samples of this run (shard, --max-samples)
  bool interrupted = false;     // stopped by RunOptions::interrupted before every sample was handled
  ScoreSummary score;
  DecodeStats stats;
  double wall_seconds = 0;
  int64_t peak_rss_bytes = 0;
};

// What a run reads before it starts: the test records, the few-shot pool, the weights.
struct RunInputs {
  DatasetFiles files;
  Dataset dataset;
  std::vector<Sample> pool;
  WeightTable weights;
};
// Checks the settings a run cannot start with (a paraphrase selection that picks nothing, a
// weighted method without a weights file); throws InvalidSetting.
void check_run_options(const RunOptions& options);

// Checks the settings against the model before anything is sized by them: the new tokens and
// the block size must fit in the model's context. Throws InvalidSetting.
void check_model_limits(const RunOptions& options, const ModelConfig& config);

// Reads them as `generate` does, after check_run_options(); throws InvalidSetting when
// the few-shot pool is smaller than the few-shot count, DatasetError, ...
RunInputs load_run_inputs(const RunOptions& options);

// The decode settings of a run: the options' stops and sampling, the model's eos
// ids (else the tokenizer's) and a padding id.
DecodeConfig run_decode_config(const RunOptions& options, const LlamaModel& model, const Tokenizer& tokenizer);

// One sample ready to decode: its prompts, token ids and plan.
struct PreparedSample {
  const Sample* sample = nullptr;
  PromptSet prompts;
  SampleTokens tokens;
  SamplePlan plan;
  std::optional<int64_t> sample_index;  // its place in the dataset, written into its records
};

// Everything a run needs besides the model: tokenizer-side preparation of samples.
class SamplePreparer {
 public:
  SamplePreparer(const RunOptions& options, const Tokenizer& tokenizer, const std::vector<Sample>& pool,
                 WeightTable weights);
  // Throws SampleError for a record that cannot be run as asked.
  PreparedSample prepare(const Sample& sample, uint64_t seed) const;
  const PromptBuilder& builder() const { return builder_; }

 private:
  std::vector<int32_t> encode(const std::string& text) const;
  const RunOptions& options_;
  const Tokenizer& tokenizer_;
  PromptBuilder builder_;
  WeightTable weights_;
  std::vector<int32_t> separator_ids_;
};

// Output rows of a decoded sample (one per stream), scored; `paraphrase_seed` is
// recorded for MaskFill records (the seed of the automatic-template order).
std::vector<OutputRecord> make_records(const PreparedSample& prepared, const std::vector<StreamResult>& results,
                                       Method method, uint64_t paraphrase_seed);

// Runs the whole job; progress through options.on_progress, logs on stderr. Throws on bad input.
RunSummary run_generate(const RunOptions& options, const LlamaModel& model, const Tokenizer& tokenizer);

// Peak resident memory of this process, in bytes.
int64_t peak_rss_bytes();

}  // namespace flexgen
