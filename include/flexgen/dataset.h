// Dataset files: our JSONL, the reference's paraphrase0..N columns (JSONL or CSV), the
// original WebQuestions release, prompt records, MyriadLAMA records; bundled-data lookup.
#pragma once

#include <cstddef>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flexgen/setting_error.h"

namespace flexgen {

// What a record carries, which decides how prompts are made.
enum class SampleKind {
  Question,    // question + paraphrases (WebQA style)
  MaskFill,    // MyriadLAMA: manual and automatic [MASK] templates
  RawPrompts,  // "prompts": full prompt strings used verbatim
};

// One dataset record. `paraphrases` is never empty for Question records (p0 is the question
// when the file gives none); for MaskFill it is manual then automatic templates.
struct Sample {
  SampleKind kind = SampleKind::Question;
  std::string uuid;  // from the file, else md5 hex of the question text
  std::string question;
  std::vector<std::string> answers;  // gold answers with aliases; may be empty for RawPrompts
  std::vector<std::string> paraphrases;
  std::vector<std::string> prompts;                                          // RawPrompts only
  std::string subject, relation;                                             // MaskFill only
  std::vector<std::string> manual_paraphrases, auto_paraphrases;             // MaskFill only
  std::string source;  // "file:line" (or "file: record N") for messages
};

// A bad file or record: the message names the file, the line and the problem.
struct DatasetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DatasetReadOptions {
  bool skip_bad = false;      // skip bad records (listed in `skipped`) instead of failing
  bool unique_uuids = true;   // a repeated uuid is a bad record (resume keys on it)
};

struct Dataset {
  std::string path;  // as given ("-" for stdin)
  std::vector<Sample> samples;
  std::vector<std::string> skipped;  // one message per skipped record (skip_bad)
};

// Reads a file ("-" = stdin). Format by content: '[' starts a JSON array of records (the
// WebQuestions release), '{' JSON Lines, anything else CSV with a header row.
Dataset read_dataset(const std::string& path, const DatasetReadOptions& options = {});
// The same on an open stream; `name` is used in messages.
Dataset read_dataset(std::istream& in, const std::string& name, const DatasetReadOptions& options = {});

// Gold answers from a WebQuestions targetValue: "(list (description X) (description \"Y Z\"))".
// Throws std::invalid_argument on anything else.
std::vector<std::string> parse_target_value(const std::string& text);

// The bundled-data folder: `flag` (--data-dir) when given, else $FLEXGEN_DATA, else
// <exe>/../share/flexgen/data, <exe>/../../data (build/bin/flexgen in a clone), then the
// source tree's data/ compiled in. Throws DatasetError when the one asked for is missing
// (a SettingError<DatasetError> about the data folder, but for a bad $FLEXGEN_DATA).
std::string find_data_dir(const std::string& flag = "");

// Files of a --dataset value: "webqa" / "myriadlama" are <find_data_dir(data_dir_flag)>/<name>/test.{jsonl,csv,json}
// with train.* as the few-shot pool when present; anything else is a file path (no pool).
struct DatasetFiles {
  std::string name;   // "webqa", "myriadlama" or the path
  std::string test;
  std::string train;  // empty when there is none
};
// Throws SettingError<DatasetError> (data folder, dataset).
DatasetFiles resolve_dataset(const std::string& spec, const std::string& data_dir_flag = "");

}  // namespace flexgen
