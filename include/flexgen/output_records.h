// Output records of a run (one JSON line or CSV row per sample, flushed as written), the
// resuming writer, and reading result files back for `flexgen eval`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "flexgen/jsonl_writer.h"

namespace flexgen {

// One output row. Fields are written in this order; optional ones only when set.
struct OutputRecord {
  std::string uuid;
  std::string method;
  std::optional<int64_t> paraphrase_index;  // per_prompt rows: which paraphrase this row answers
  std::vector<std::string> paraphrases;     // the paraphrases used
  std::vector<size_t> paraphrase_indexes;   // their indexes into the record's candidates
  std::optional<uint64_t> paraphrase_seed;  // MyriadLAMA: seed of the automatic-template order
  std::vector<std::string> answers;
  std::string prediction;
  std::string generation;
  std::vector<int32_t> generated_ids;
  bool correct = false;
  bool correct_bidirectional = false;
  bool exact_match = false;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  std::vector<std::pair<int64_t, int64_t>> segments;  // [start, end) token span per paraphrase
  std::optional<int64_t> sample_index;  // the sample's 0-based place in the dataset (what shards and seeds count)
  std::string run;  // what reproduces the run (a JSON object's text: version, model fingerprint, dtype,
                    // device kind, batch invariance, seeds); empty = not recorded (older files)
};

enum class OutputFormat { Jsonl, Csv };
// "jsonl" or "csv"; throws std::invalid_argument otherwise.
OutputFormat parse_output_format(const std::string& text);

// The CSV header row (with "\n"); lists and id arrays are JSON text in their cells.
// sample_index and run are the last columns; files written before they existed lack them (resumed as
// they are).
std::string csv_header();
// One record as a JSON line or a CSV row, ending in "\n".
std::string format_record(const OutputRecord& record, OutputFormat format);

// The resume key: uuid, method and (per_prompt rows) the paraphrase index.
std::string record_key(const std::string& uuid, const std::string& method,
                       std::optional<int64_t> paraphrase_index = std::nullopt);

// A record read back from a file `generate` wrote, and where it was ("file:line").
struct StoredRecord {
  OutputRecord record;
  std::string source;
};

// The records of a JSONL or CSV file that `generate` wrote, in file order; `format` is unset
// for an empty file. Every field must be one of OutputRecord's with its type, so that
// format_record() writes each record back byte for byte. Throws OutputFileError naming file:line.
struct RecordFile {
  std::optional<OutputFormat> format;
  std::vector<StoredRecord> records;
};
RecordFile read_record_file(const std::string& path);

// Writes records to a file ("-" = stdout), each flushed as it is written. With `resume`
// an existing file is kept: its records are read back (each must be a whole result record of
// this format), a half-written last line (a run killed mid-write) is cut off so the file is valid
// again, and new records are appended. A file that is not results of this format (another format,
// binary data, a row that is not a record) throws OutputFileError naming file:line, untouched.
// Without `resume` an existing file is replaced.
class RecordWriter {
 public:
  // `check_kept` (resuming) sees the records already in the file before anything is cut or
  // appended; it throws to refuse them.
  using KeptCheck = std::function<void(const std::vector<StoredRecord>&)>;
  RecordWriter(const std::string& path, OutputFormat format, bool resume, const KeptCheck& check_kept = nullptr);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  bool done(const std::string& key) const { return done_.count(key) > 0; }
  // Resuming: the records already in the file, each parsed in full and with its "file:line", so
  // that the run can check they are results of its own configuration.
  const std::vector<StoredRecord>& kept() const { return kept_; }
  size_t resumed_records() const { return done_.size(); }
  size_t cut_bytes() const { return cut_bytes_; }  // bytes of a half-written line removed
  void write(const OutputRecord& record);          // throws OutputFileError when the write fails

 private:
  OutputFormat format_;
  size_t csv_width_ = 0;  // resuming an older CSV file: its number of columns (0 = all of today's)
  std::unique_ptr<JsonlWriter> out_;
  std::set<std::string> done_;
  std::vector<StoredRecord> kept_;
  size_t cut_bytes_ = 0;
};

// A row of a result file, as `flexgen eval` scores it.
struct ResultRow {
  std::string uuid;
  std::string method;
  std::vector<std::string> answers;
  std::optional<std::string> prediction;
  std::optional<std::string> generation;
  std::string source;  // "file:line"
};

// Reads our JSONL or CSV output, or another pipeline's JSONL/CSV/JSON array with columns
// answers|answer|gold_answers, prediction|pred, generation|generated_text|output,
// uuid|id, method (all but answers and one of prediction/generation optional).
// "-" = stdin. Throws OutputFileError naming file:line.
std::vector<ResultRow> read_result_file(const std::string& path);

}  // namespace flexgen
