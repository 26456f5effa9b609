// Output records, the resuming writer and result-file reading (see output_records.h).
#include "flexgen/output_records.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "csv.h"
#include "json_lines.h"
#include "json_message.h"
#include "list_literal.h"
#include "unicode_text.h"

namespace flexgen {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

const std::vector<std::string> kCsvColumns = {
    "uuid",    "method",     "paraphrase_index", "paraphrases",   "paraphrase_indexes", "paraphrase_seed",
    "answers", "prediction", "generation",       "generated_ids", "correct",            "correct_bidirectional",
    "exact_match", "prompt_tokens", "generated_tokens", "segments", "sample_index", "run"};
// Headers of files written before records carried run (and sample_index) are today's without those
// last columns: such files are read and resumed with their own columns. Returns the header's
// column count when it is today's or such an older one, else 0.
size_t known_csv_header(const std::vector<std::string>& fields) {
  for (size_t drop = 0; drop <= 2; ++drop)
    if (fields.size() == kCsvColumns.size() - drop && std::equal(fields.begin(), fields.end(), kCsvColumns.begin()))
      return fields.size();
  return 0;
}

// JSON text that never throws on bad UTF-8 (a generation cut mid-character): U+FFFD instead.
template <typename J>
std::string dump(const J& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json segments_json(const OutputRecord& r) {
  json out = json::array();
  for (const auto& [a, b] : r.segments) out.push_back({a, b});
  return out;
}

std::string read_all(std::istream& in) {
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Calls fn(object, "path:line") for each non-blank line of JSONL `text`, parsed; `note` ends the
// message of a line that is not valid JSON. With `complete_lines_only` a last line without its
// newline (half-written) is left out. Returns the byte count of the lines read.
template <class Fn>
size_t for_each_json_line(const std::string& text, const std::string& path, bool complete_lines_only,
                          const std::string& note, Fn&& fn) {
  size_t at = 0, line = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) {
      if (complete_lines_only) return at;  // the rest is a half-written line
      nl = text.size();
    }
    ++line;
    const std::string row = text.substr(at, nl - at);
    at = std::min(nl + 1, text.size());
    if (unicode::strip(row).empty()) continue;
    const std::string where = path + ":" + std::to_string(line);
    json j;
    try {
      j = json::parse(row);
    } catch (const json::exception& e) {  // parse errors, and numbers that do not fit a double
      throw OutputFileError(where + ": not valid JSON (" + json_message(e) + ")" + note);
    }
    fn(j, where);
  }
  return at;
}

// 1-based line number of byte `at` of `text`.
size_t line_at(const std::string& text, size_t at) {
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + std::min(at, text.size()), '\n'));
}

// A resume file holding NUL bytes is not text, let alone records: refused, untouched.
void check_text(const std::string& text, const std::string& path) {
  const size_t nul = text.find('\0');
  if (nul != std::string::npos)
    throw OutputFileError(path + ":" + std::to_string(line_at(text, nul)) +
                          ": not a text file (it holds NUL bytes); not a results file, cannot resume it");
}

const char* const kNotResumable = "; cannot resume this file (give another output file, or remove it)";
}  // namespace

namespace {
json csv_cell(const std::string& column, const std::string& cell);

// Record fields from JSON values (JSONL lines, or CSV cells already turned into JSON): each
// of OutputRecord's fields with its type, nothing else. Throws std::invalid_argument.
struct RecordParser {
  OutputRecord r;
  std::set<std::string> seen;

  static const json& typed(const json& v, bool ok, const std::string& name, const char* what) {
    if (!ok) throw std::invalid_argument("field '" + name + "' must be " + what);
    return v;
  }
  static std::vector<std::string> strings(const json& v, const std::string& name) {
    typed(v, v.is_array(), name, "a list of strings");
    std::vector<std::string> out;
    for (const auto& e : v) out.push_back(typed(e, e.is_string(), name, "a list of strings").get<std::string>());
    return out;
  }
  static int64_t integer(const json& v, const std::string& name) {
    return typed(v, v.is_number_integer(), name, "an integer").get<int64_t>();
  }

  void set(const std::string& k, const json& v) {
    if (!seen.insert(k).second) throw std::invalid_argument("field '" + k + "' given twice");
    if (k == "uuid") r.uuid = typed(v, v.is_string(), k, "a string").get<std::string>();
    else if (k == "method") r.method = typed(v, v.is_string(), k, "a string").get<std::string>();
    else if (k == "paraphrase_index") r.paraphrase_index = integer(v, k);
    else if (k == "paraphrases") r.paraphrases = strings(v, k);
    else if (k == "paraphrase_indexes") {
      typed(v, v.is_array(), k, "a list of non-negative integers");
      for (const auto& e : v)
        r.paraphrase_indexes.push_back(typed(e, e.is_number_unsigned(), k, "a list of non-negative integers").get<size_t>());
    } else if (k == "paraphrase_seed") r.paraphrase_seed = typed(v, v.is_number_unsigned(), k, "a non-negative integer").get<uint64_t>();
    else if (k == "answers") r.answers = strings(v, k);
    else if (k == "prediction") r.prediction = typed(v, v.is_string(), k, "a string").get<std::string>();
    else if (k == "generation") r.generation = typed(v, v.is_string(), k, "a string").get<std::string>();
    else if (k == "generated_ids") {
      typed(v, v.is_array(), k, "a list of token ids");
      for (const auto& e : v) r.generated_ids.push_back(static_cast<int32_t>(integer(e, k)));
    } else if (k == "correct") r.correct = typed(v, v.is_boolean(), k, "true or false").get<bool>();
    else if (k == "correct_bidirectional") r.correct_bidirectional = typed(v, v.is_boolean(), k, "true or false").get<bool>();
    else if (k == "exact_match") r.exact_match = typed(v, v.is_boolean(), k, "true or false").get<bool>();
    else if (k == "prompt_tokens") r.prompt_tokens = integer(v, k);
    else if (k == "generated_tokens") r.generated_tokens = integer(v, k);
    else if (k == "segments") {
      typed(v, v.is_array(), k, "a list of [start, end] pairs");
      for (const auto& e : v) {
        typed(e, e.is_array() && e.size() == 2, k, "a list of [start, end] pairs");
        r.segments.emplace_back(integer(e[0], k), integer(e[1], k));
      }
    } else if (k == "sample_index") r.sample_index = integer(v, k);
    else if (k == "run") r.run = dump(typed(v, v.is_object(), k, "a JSON object"));
    else throw std::invalid_argument("field '" + k + "' is not a field of flexgen's output records");
  }

  OutputRecord finish() {
    for (const char* k : {"uuid", "method", "paraphrases", "paraphrase_indexes", "answers", "prediction", "generation",
                          "generated_ids", "correct", "correct_bidirectional", "exact_match", "prompt_tokens",
                          "generated_tokens", "segments"})
      if (!seen.count(k)) throw std::invalid_argument(std::string("no field '") + k + "'");
    return std::move(r);
  }
};

// A JSONL line's object as a record; throws std::invalid_argument.
OutputRecord record_of_json(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("not a JSON object");
  RecordParser parser;
  for (const auto& [k, v] : j.items()) parser.set(k, v);
  return parser.finish();
}

// A CSV row under `columns` as a record; throws std::invalid_argument.
OutputRecord record_of_csv(const std::vector<std::string>& columns, const std::vector<std::string>& fields) {
  RecordParser parser;
  for (size_t c = 0; c < columns.size(); ++c) {
    const bool optional = columns[c] == "paraphrase_index" || columns[c] == "paraphrase_seed" ||
                          columns[c] == "sample_index" || columns[c] == "run";
    if (optional && fields[c].empty()) continue;
    parser.set(columns[c], csv_cell(columns[c], fields[c]));
  }
  return parser.finish();
}

// The records of the complete lines of a JSONL output; returns the byte count to keep. A last
// line without its newline is cut only when it is the start of a record as format_record() writes
// it (a run killed mid-write); anything else is refused.
size_t scan_jsonl(const std::string& text, const std::string& path, std::vector<StoredRecord>& kept) {
  check_text(text, path);
  const size_t keep = for_each_json_line(text, path, true, kNotResumable, [&](const json& j, const std::string& where) {
    try {
      kept.push_back(StoredRecord{record_of_json(j), where});
    } catch (const std::invalid_argument& e) {
      throw OutputFileError(where + ": not a result of flexgen generate (" + e.what() + ")" + kNotResumable);
    }
  });
  if (keep < text.size()) {
    const std::string tail = text.substr(keep);
    const std::string start = "{\"uuid\":";
    const bool record_start = tail.compare(0, start.size(), start, 0, std::min(start.size(), tail.size())) == 0;
    const bool one_line = std::none_of(tail.begin(), tail.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
    if (!record_start || !one_line)
      throw OutputFileError(path + ":" + std::to_string(line_at(text, keep)) +
                            ": the last line is neither a result nor the start of one (it has no line end)" +
                            kNotResumable);
  }
  return keep;
}

// The records of a CSV output; returns the byte count to keep. `width` is set to the number of
// columns of the file's header. Only a last row left open by a run killed mid-write (no line end,
// or a quoted field never closed) after a complete header is cut; any other text is refused.
size_t scan_csv(const std::string& text, const std::string& path, std::vector<StoredRecord>& kept, size_t& width) {
  check_text(text, path);
  // Blank lines only: the reader sees an empty file, so it resumes as one (they are cut, the header
  // written); left in place they would stand before the header.
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return 0;
  std::istringstream in(text);
  csv::Reader reader(in);
  size_t keep = 0;
  std::vector<std::string> columns;
  auto half_written = [&](const std::string& what) {
    // Nothing but a prefix of our header (a run killed while writing it) may be cut before the header.
    if (columns.empty() && csv_header().compare(0, text.size(), text) != 0)
      throw OutputFileError(path + ":1: " + (what.empty() ? "not flexgen's CSV header" : what) +
                            "; not a CSV results file" + kNotResumable);
    return keep;
  };
  while (true) {
    std::optional<csv::Row> row;
    try {
      row = reader.next();
    } catch (const csv::FormatError& e) {
      const std::string what = e.what();
      // A quoted field left open at the end: a half-written row. Other CSV errors are not ours.
      if (what.find("is never closed") == std::string::npos) {
        // "line N: ..." as "path:N: ..."
        const std::string where = what.rfind("line ", 0) == 0 ? path + ":" + what.substr(5) : path + ": " + what;
        throw OutputFileError(where + "; not a CSV results file" + kNotResumable);
      }
      return half_written(what);
    }
    if (!row) return keep;
    const std::streamoff pos = in.tellg();
    const size_t end = pos < 0 ? text.size() : static_cast<size_t>(pos);
    if (end == 0 || text[end - 1] != '\n') return half_written("");  // no line end: half-written
    const std::string where = path + ":" + std::to_string(row->line);
    if (columns.empty()) {
      width = known_csv_header(row->fields);
      if (width == 0) throw OutputFileError(where + ": not flexgen's CSV header; not a CSV results file" + kNotResumable);
      columns = row->fields;
    } else {
      if (row->fields.size() != columns.size())
        throw OutputFileError(where + ": has " + std::to_string(row->fields.size()) + " fields; the header has " +
                              std::to_string(columns.size()) + kNotResumable);
      try {
        kept.push_back(StoredRecord{record_of_csv(columns, row->fields), where});
      } catch (const std::invalid_argument& e) {
        throw OutputFileError(where + ": not a result of flexgen generate (" + e.what() + ")" + kNotResumable);
      }
    }
    keep = end;
  }
}

// First present field among `names`.
const json* field(const json& obj, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    const auto it = obj.find(n);
    if (it != obj.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

ResultRow result_row(const json& obj, const std::string& where) {
  if (!obj.is_object()) throw OutputFileError(where + ": a row must be a JSON object");
  ResultRow r;
  r.source = where;
  auto text_of = [&](const json& v, const char* what) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number()) return v.dump();
    throw OutputFileError(where + ": field '" + what + "' must be a string");
  };
  if (const json* v = field(obj, {"uuid", "id"})) r.uuid = text_of(*v, "uuid");
  if (const json* v = field(obj, {"method"})) r.method = text_of(*v, "method");
  const json* answers = field(obj, {"answers", "answer", "gold_answers"});
  if (!answers) throw OutputFileError(where + ": no answers (field answers, answer or gold_answers)");
  if (answers->is_array()) {
    for (const auto& a : *answers) {
      if (!a.is_string()) throw OutputFileError(where + ": field 'answers' must be a list of strings");
      r.answers.push_back(a.get<std::string>());
    }
  } else {
    const std::string text = text_of(*answers, "answers");
    const std::string trimmed = unicode::strip(text);
    if (!trimmed.empty() && trimmed.front() == '[') {
      try {
        r.answers = parse_string_list(trimmed);
      } catch (const std::invalid_argument& e) {
        throw OutputFileError(where + ": field 'answers': " + e.what());
      }
    } else {
      r.answers = {text};
    }
  }
  if (const json* v = field(obj, {"prediction", "pred"})) r.prediction = text_of(*v, "prediction");
  if (const json* v = field(obj, {"generation", "generated_text", "output"})) r.generation = text_of(*v, "generation");
  if (!r.prediction && !r.generation)
    throw OutputFileError(where + ": no prediction or generation (fields prediction|pred, generation|generated_text|output)");
  return r;
}


// A record's CSV cells in kCsvColumns order.
std::vector<std::string> csv_fields(const OutputRecord& r) {
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  return {r.uuid, r.method, r.paraphrase_index ? std::to_string(*r.paraphrase_index) : "",
          dump(json(r.paraphrases)), dump(json(r.paraphrase_indexes)),
          r.paraphrase_seed ? std::to_string(*r.paraphrase_seed) : "", dump(json(r.answers)),
          r.prediction, r.generation, dump(json(r.generated_ids)), b(r.correct),
          b(r.correct_bidirectional), b(r.exact_match), std::to_string(r.prompt_tokens),
          std::to_string(r.generated_tokens), dump(segments_json(r)),
          r.sample_index ? std::to_string(*r.sample_index) : "", r.run};
}


// A CSV cell as the JSON value its column holds.
json csv_cell(const std::string& column, const std::string& cell) {
  if (column == "uuid" || column == "method" || column == "prediction" || column == "generation") return cell;
  if (column == "correct" || column == "correct_bidirectional" || column == "exact_match") {
    if (cell == "true") return true;
    if (cell == "false") return false;
    throw std::invalid_argument("field '" + column + "' must be true or false");
  }
  try {
    return json::parse(cell);
  } catch (const json::exception&) {
    throw std::invalid_argument("field '" + column + "' is not valid JSON: '" + cell + "'");
  }
}
}  // namespace

OutputFormat parse_output_format(const std::string& text) {
  if (text == "jsonl") return OutputFormat::Jsonl;
  if (text == "csv") return OutputFormat::Csv;
  throw std::invalid_argument("'" + text + "' is not an output format (jsonl or csv)");
}

std::string csv_header() { return csv::format_row(kCsvColumns); }

std::string format_record(const OutputRecord& r, OutputFormat format) {
  if (format == OutputFormat::Csv) return csv::format_row(csv_fields(r));
  ordered_json j;
  j["uuid"] = r.uuid;
  j["method"] = r.method;
  if (r.paraphrase_index) j["paraphrase_index"] = *r.paraphrase_index;
  j["paraphrases"] = r.paraphrases;
  j["paraphrase_indexes"] = r.paraphrase_indexes;
  if (r.paraphrase_seed) j["paraphrase_seed"] = *r.paraphrase_seed;
  j["answers"] = r.answers;
  j["prediction"] = r.prediction;
  j["generation"] = r.generation;
  j["generated_ids"] = r.generated_ids;
  j["correct"] = r.correct;
  j["correct_bidirectional"] = r.correct_bidirectional;
  j["exact_match"] = r.exact_match;
  j["prompt_tokens"] = r.prompt_tokens;
  j["generated_tokens"] = r.generated_tokens;
  j["segments"] = segments_json(r);
  if (r.sample_index) j["sample_index"] = *r.sample_index;
  if (!r.run.empty()) j["run"] = ordered_json::parse(r.run);
  return dump(j) + "\n";
}

std::string record_key(const std::string& uuid, const std::string& method, std::optional<int64_t> paraphrase_index) {
  std::string key = uuid + '\t' + method;
  if (paraphrase_index) key += '\t' + std::to_string(*paraphrase_index);
  return key;
}

RecordWriter::RecordWriter(const std::string& path, OutputFormat format, bool resume, const KeptCheck& check_kept)
    : format_(format) {
  // A line of format_record() or csv_header() without its "\n".
  auto line_of = [](const std::string& text) { return std::string_view(text).substr(0, text.size() - 1); };
  if (path == "-") {
    if (resume) throw std::invalid_argument("cannot resume stdout (resuming needs an output file)");
    out_ = std::make_unique<JsonlWriter>(path);
    if (format_ == OutputFormat::Csv) out_->write_line(line_of(csv_header()));
    return;
  }
  std::error_code ec;
  size_t keep = 0;
  if (resume && fs::exists(path, ec)) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw OutputFileError(path + ": cannot read the output file to resume it");
    const std::string text = read_all(in);
    keep = format_ == OutputFormat::Csv ? scan_csv(text, path, kept_, csv_width_) : scan_jsonl(text, path, kept_);
    for (const StoredRecord& s : kept_) done_.insert(record_key(s.record.uuid, s.record.method, s.record.paraphrase_index));
    if (csv_width_ == kCsvColumns.size()) csv_width_ = 0;
    if (check_kept) check_kept(kept_);
    if (keep < text.size()) {
      fs::resize_file(path, keep, ec);
      if (ec) throw OutputFileError(path + ": cannot cut the half-written last line: " + ec.message());
      cut_bytes_ = text.size() - keep;
    }
  }
  out_ = std::make_unique<JsonlWriter>(path, resume);
  if (format_ == OutputFormat::Csv && keep == 0) out_->write_line(line_of(csv_header()));
}

RecordWriter::~RecordWriter() = default;

void RecordWriter::write(const OutputRecord& record) {
  std::string line;
  if (csv_width_ > 0) {
    std::vector<std::string> fields = csv_fields(record);
    fields.resize(csv_width_);  // the file's (older) header has fewer columns
    line = csv::format_row(fields);
  } else {
    line = format_record(record, format_);
  }
  out_->write_line(std::string_view(line).substr(0, line.size() - 1));
  done_.insert(record_key(record.uuid, record.method, record.paraphrase_index));
}

std::vector<ResultRow> read_result_file(const std::string& path) {
  std::string text;
  const std::string name = path == "-" ? "<stdin>" : path;
  if (path == "-") {
    text = read_all(std::cin);
  } else {
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw OutputFileError(path + ": is a folder, not a result file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw OutputFileError(path + ": cannot open the result file");
    text = read_all(in);
  }
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text = text.substr(3);
  std::vector<ResultRow> rows;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw OutputFileError(name + ": empty file");
  if (text[first] == '[') {
    json j;
    try {
      j = json::parse(text);
    } catch (const json::parse_error& e) {
      throw OutputFileError(name + ":" + std::to_string(json_error_line(text, e.byte)) + ": not valid JSON: " +
                            json_message(e));
    } catch (const json::exception& e) {  // a number that does not fit a double: no position given
      throw OutputFileError(name + ": not valid JSON: " + json_message(e));
    }
    for (size_t i = 0; i < j.size(); ++i) rows.push_back(result_row(j[i], name + ": record " + std::to_string(i + 1)));
  } else if (text[first] == '{') {
    for_each_json_line(text, [&](const std::string& line, size_t number) {
      const std::string where = name + ":" + std::to_string(number);
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception& e) {
        throw OutputFileError(where + ": not valid JSON: " + json_message(e));
      }
      rows.push_back(result_row(j, where));
    });
  } else {
    std::istringstream in(text);
    try {
      csv::TableReader table(in);
      while (const auto row = table.next()) {
        const std::string where = name + ":" + std::to_string(row->line);
        try {
          rows.push_back(result_row(table.object(*row), where));
        } catch (const csv::RowShapeError& e) {
          throw OutputFileError(where + ": " + e.what());
        }
      }
    } catch (const csv::FormatError& e) {
      throw OutputFileError(name + ": " + e.what());
    }
  }
  if (rows.empty()) throw OutputFileError(name + ": no rows");
  return rows;
}

RecordFile read_record_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw OutputFileError(path + ": is a folder, not a result file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw OutputFileError(path + ": cannot open the result file");
  const std::string text = read_all(in);
  RecordFile file;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return file;
  if (text[first] == '{') {
    file.format = OutputFormat::Jsonl;
    for_each_json_line(text, path, false, "", [&](const json& j, const std::string& where) {
      if (!j.is_object()) throw OutputFileError(where + ": not a flexgen output record (not a JSON object)");
      try {
        file.records.push_back(StoredRecord{record_of_json(j), where});
      } catch (const std::invalid_argument& e) {
        throw OutputFileError(where + ": not a flexgen output record: " + e.what());
      }
    });
    return file;
  }
  file.format = OutputFormat::Csv;
  std::istringstream stream(text);
  csv::Reader reader(stream);
  std::vector<std::string> columns;
  while (true) {
    std::optional<csv::Row> row;
    try {
      row = reader.next();
    } catch (const csv::FormatError& e) {
      throw OutputFileError(path + ": " + e.what());
    }
    if (!row) break;
    const std::string where = path + ":" + std::to_string(row->line);
    if (columns.empty()) {
      if (known_csv_header(row->fields) == 0)
        throw OutputFileError(where + ": not flexgen's CSV header (nor a JSON Lines file)");
      columns = row->fields;
      continue;
    }
    if (row->fields.size() != columns.size())
      throw OutputFileError(where + ": has " + std::to_string(row->fields.size()) + " fields; the header has " +
                            std::to_string(columns.size()));
    try {
      file.records.push_back(StoredRecord{record_of_csv(columns, row->fields), where});
    } catch (const std::invalid_argument& e) {
      throw OutputFileError(where + ": not a flexgen output record: " + e.what());
    }
  }
  return file;
}

}  // namespace flexgen
