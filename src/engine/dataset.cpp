// Dataset readers and bundled-data lookup (see dataset.h).
#include "flexgen/dataset.h"

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
#include "flexgen/md5.h"
#include "list_literal.h"
#include "unicode_text.h"

#ifndef FLEXGEN_SOURCE_DATA_DIR
#define FLEXGEN_SOURCE_DATA_DIR ""
#endif

namespace flexgen {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A record-level problem; the reader prefixes the location.
struct RecordError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A list of strings from a JSON array, or from text (a CSV cell, or a JSONL string that
// holds a list literal); a plain string is a list of one when `single_ok`.
std::vector<std::string> string_list(const json& v, const std::string& field, bool single_ok) {
  std::vector<std::string> out;
  if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string())
        throw RecordError("field '" + field + "': item " + std::to_string(i) + " is not a string");
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }
  if (!v.is_string()) throw RecordError("field '" + field + "' must be a list of strings");
  const std::string text = v.get<std::string>();
  const std::string trimmed = unicode::strip(text);
  if (!trimmed.empty() && trimmed.front() == '[') {
    try {
      return parse_string_list(trimmed);
    } catch (const std::invalid_argument& e) {
      throw RecordError("field '" + field + "': " + e.what());
    }
  }
  if (!single_ok) throw RecordError("field '" + field + "' must be a list of strings");
  return {text};
}

std::string string_field(const json& obj, const char* field) {
  const auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  throw RecordError(std::string("field '") + field + "' must be a string");
}

bool has(const json& obj, const char* field) {
  const auto it = obj.find(field);
  return it != obj.end() && !it->is_null();
}

// Every item must have text; `what` names an item in messages ("paraphrase", "answer").
void require_text(const std::vector<std::string>& items, const std::string& what) {
  for (size_t i = 0; i < items.size(); ++i)
    if (unicode::strip(items[i]).empty()) throw RecordError(what + " " + std::to_string(i) + " is empty");
}

// paraphrases: "paraphrases" list, else columns paraphrase0, paraphrase1, ... (contiguous).
std::vector<std::string> paraphrase_field(const json& obj) {
  if (has(obj, "paraphrases")) {
    std::vector<std::string> out = string_list(obj["paraphrases"], "paraphrases", false);
    if (out.empty()) throw RecordError("field 'paraphrases' is an empty list");
    return out;
  }
  std::vector<std::string> out;
  for (size_t i = 0;; ++i) {
    const std::string key = "paraphrase" + std::to_string(i);
    if (!obj.contains(key)) break;
    if (!obj[key].is_string()) throw RecordError("field '" + key + "' must be a string");
    out.push_back(obj[key].get<std::string>());
  }
  return out;
}

Sample parse_record(const json& obj) {
  if (!obj.is_object()) throw RecordError("a record must be a JSON object");
  Sample s;
  s.question = has(obj, "question") ? string_field(obj, "question") : string_field(obj, "utterance");
  if (has(obj, "answers")) {
    s.answers = string_list(obj["answers"], "answers", true);
  } else if (has(obj, "targetValue")) {
    try {
      s.answers = parse_target_value(string_field(obj, "targetValue"));
    } catch (const std::invalid_argument& e) {
      throw RecordError(std::string("field 'targetValue': ") + e.what());
    }
  }
  if (has(obj, "prompts")) {
    s.kind = SampleKind::RawPrompts;
    s.prompts = string_list(obj["prompts"], "prompts", false);
    if (s.prompts.empty()) throw RecordError("field 'prompts' is an empty list");
    require_text(s.prompts, "prompt");
  } else if (has(obj, "manual_paraphrases") || has(obj, "auto_paraphrases")) {
    s.kind = SampleKind::MaskFill;
    s.subject = string_field(obj, "subject");
    s.relation = string_field(obj, "relation");
    if (has(obj, "manual_paraphrases"))
      s.manual_paraphrases = string_list(obj["manual_paraphrases"], "manual_paraphrases", false);
    if (has(obj, "auto_paraphrases"))
      s.auto_paraphrases = string_list(obj["auto_paraphrases"], "auto_paraphrases", false);
    if (s.manual_paraphrases.empty()) throw RecordError("field 'manual_paraphrases' is missing or empty");
    require_text(s.manual_paraphrases, "manual paraphrase");
    require_text(s.auto_paraphrases, "automatic paraphrase");
    for (size_t i = 0; i < s.manual_paraphrases.size(); ++i)
      if (s.manual_paraphrases[i].find("[MASK]") == std::string::npos)
        throw RecordError("manual paraphrase " + std::to_string(i) + " has no [MASK]");
    for (size_t i = 0; i < s.auto_paraphrases.size(); ++i)
      if (s.auto_paraphrases[i].find("[MASK]") == std::string::npos)
        throw RecordError("automatic paraphrase " + std::to_string(i) + " has no [MASK]");
    s.paraphrases = s.manual_paraphrases;
    s.paraphrases.insert(s.paraphrases.end(), s.auto_paraphrases.begin(), s.auto_paraphrases.end());
    if (s.question.empty()) s.question = s.manual_paraphrases[0];
  } else {
    s.paraphrases = paraphrase_field(obj);
    require_text(s.paraphrases, "paraphrase");
    if (s.question.empty() && !s.paraphrases.empty()) s.question = s.paraphrases[0];
    if (unicode::strip(s.question).empty())
      throw RecordError(has(obj, "question") ? "the question is empty" : "no 'question' (nor paraphrases)");
    if (s.paraphrases.empty()) s.paraphrases.push_back(s.question);
  }
  if (s.kind != SampleKind::RawPrompts) {
    if (!has(obj, "answers") && !has(obj, "targetValue")) throw RecordError("no 'answers'");
    if (s.answers.empty()) throw RecordError("'answers' is an empty list");
    require_text(s.answers, "answer");
  }
  s.uuid = string_field(obj, "uuid");
  if (s.uuid.empty()) s.uuid = md5_hex(s.kind == SampleKind::RawPrompts && s.question.empty() ? s.prompts[0] : s.question);
  return s;
}

class Collector {
 public:
  Collector(const std::string& name, const DatasetReadOptions& options) : name_(name), options_(options) {
    dataset_.path = name;
  }

  // Adds a record parsed by `make`, or records / throws its problem at `where`.
  template <typename Make>
  void add(const std::string& where, Make&& make) {
    try {
      Sample s = make();
      s.source = where;
      if (options_.unique_uuids) {
        auto [it, fresh] = seen_.emplace(s.uuid, where);
        if (!fresh) throw RecordError("uuid " + s.uuid + " repeats the record at " + it->second);
      }
      dataset_.samples.push_back(std::move(s));
    } catch (const RecordError& e) {
      const std::string message = where + ": " + e.what();
      if (!options_.skip_bad) throw DatasetError(message);
      dataset_.skipped.push_back(message);
    }
  }

  Dataset finish() {
    if (dataset_.samples.empty())
      throw DatasetError(name_ + ": no usable records" +
                         (dataset_.skipped.empty() ? "" : " (" + std::to_string(dataset_.skipped.size()) + " skipped)"));
    return std::move(dataset_);
  }

 private:
  std::string name_;
  DatasetReadOptions options_;
  Dataset dataset_;
  std::map<std::string, std::string> seen_;
};

void read_jsonl(const std::string& text, const std::string& name, Collector& out) {
  for_each_json_line(text, [&](const std::string& line, size_t number) {
    out.add(name + ":" + std::to_string(number), [&] {
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception& e) {  // also numbers that do not fit a double (1e999)
        throw RecordError("not valid JSON: " + json_message(e));
      }
      return parse_record(j);
    });
  });
}

void read_json_array(const std::string& text, const std::string& name, Collector& out) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw DatasetError(name + ":" + std::to_string(json_error_line(text, e.byte)) + ": not valid JSON: " +
                       json_message(e));
  } catch (const json::exception& e) {  // a number that does not fit a double: no position given
    throw DatasetError(name + ": not valid JSON: " + json_message(e));
  }
  if (!j.is_array()) throw DatasetError(name + ": a JSON file must hold an array of records");
  for (size_t i = 0; i < j.size(); ++i)
    out.add(name + ": record " + std::to_string(i + 1), [&] { return parse_record(j[i]); });
}

void read_csv(const std::string& text, const std::string& name, Collector& out) {
  std::istringstream in(text);
  std::optional<csv::TableReader> table;
  try {
    table.emplace(in);
    while (const auto row = table->next()) {
      out.add(name + ":" + std::to_string(row->line), [&] {
        try {
          return parse_record(table->object(*row));
        } catch (const csv::RowShapeError& e) {
          throw RecordError(e.what());
        }
      });
    }
  } catch (const csv::FormatError& e) {
    throw DatasetError(name + ": " + e.what());
  }
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

Dataset read_dataset(std::istream& in, const std::string& name, const DatasetReadOptions& options) {
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text = text.substr(3);
  Collector out(name, options);
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw DatasetError(name + ": empty file");
  if (text[first] == '[')
    read_json_array(text, name, out);
  else if (text[first] == '{')
    read_jsonl(text, name, out);
  else
    read_csv(text, name, out);
  return out.finish();
}

Dataset read_dataset(const std::string& path, const DatasetReadOptions& options) {
  if (path == "-") return read_dataset(std::cin, "<stdin>", options);
  if (is_dir(path)) throw DatasetError(path + ": is a folder, not a dataset file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DatasetError(path + ": cannot open the dataset file");
  Dataset d = read_dataset(in, path, options);
  d.path = path;
  return d;
}

std::vector<std::string> parse_target_value(const std::string& text) {
  // (list (description X) (description "Y \"Z\"") ...)
  size_t i = 0;
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(what + " at character " + std::to_string(i + 1) + " of '" + text + "'");
  };
  auto skip_space = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
  };
  auto expect_word = [&](const std::string& w) {
    skip_space();
    if (text.compare(i, w.size(), w) != 0) fail("expected '" + w + "'");
    i += w.size();
  };
  expect_word("(");
  expect_word("list");
  std::vector<std::string> out;
  while (true) {
    skip_space();
    if (i < text.size() && text[i] == ')') {
      ++i;
      break;
    }
    expect_word("(");
    expect_word("description");
    skip_space();
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      while (true) {
        if (i >= text.size()) fail("unterminated quoted description");
        const char c = text[i++];
        if (c == '"') break;
        if (c == '\\' && i < text.size()) {
          value += text[i++];
          continue;
        }
        value += c;
      }
      skip_space();
      if (i >= text.size() || text[i] != ')') fail("expected ')'");
      ++i;
    } else {
      // Bare value: up to the ')' closing this description (values may hold spaces and parentheses
      // in the release only when quoted, so the first ')' ends it).
      const size_t close = text.find(')', i);
      if (close == std::string::npos) fail("expected ')'");
      value = unicode::strip(text.substr(i, close - i));
      i = close + 1;
    }
    if (value.empty()) fail("empty description");
    out.push_back(value);
  }
  skip_space();
  if (i != text.size()) fail("text after the list");
  if (out.empty()) fail("no descriptions");
  return out;
}

std::string find_data_dir(const std::string& flag) {
  auto usable = [](const fs::path& p) { return is_dir(p / "webqa") || is_dir(p / "myriadlama"); };
  if (!flag.empty()) {
    if (!is_dir(flag)) throw SettingError<DatasetError>(Setting::DataFolder, flag, "no such folder");
    return flag;
  }
  if (const char* env = std::getenv("FLEXGEN_DATA"); env && *env) {
    if (!is_dir(env)) throw DatasetError(std::string("FLEXGEN_DATA=") + env + ": no such folder");
    return env;
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path() / ".." / "share" / "flexgen" / "data");
    candidates.push_back(exe.parent_path() / ".." / ".." / "data");
  }
  if (*FLEXGEN_SOURCE_DATA_DIR) candidates.emplace_back(FLEXGEN_SOURCE_DATA_DIR);
  std::string tried;
  for (const auto& c : candidates) {
    if (usable(c)) return fs::weakly_canonical(c, ec).string();
    tried += (tried.empty() ? "" : ", ") + c.lexically_normal().string();
  }
  throw SettingError<DatasetError>(Setting::DataFolder, "",
                                   "cannot find the bundled data folder (tried " + tried + ")");
}

DatasetFiles resolve_dataset(const std::string& spec, const std::string& data_dir_flag) {
  if (spec.empty())
    throw SettingError<DatasetError>(Setting::Dataset, "", "empty value (webqa, myriadlama, a file, or - for stdin)");
  if (spec != "webqa" && spec != "myriadlama") {
    if (spec != "-" && is_dir(spec))
      throw SettingError<DatasetError>(Setting::Dataset, spec, "is a directory, not a dataset file (give its test file)");
    if (spec != "-" && !is_file(spec))
      throw SettingError<DatasetError>(Setting::Dataset, spec, "no such file (named datasets: webqa, myriadlama)");
    return DatasetFiles{spec, spec, ""};
  }
  const fs::path dir = fs::path(find_data_dir(data_dir_flag)) / spec;
  auto pick = [&](const std::string& stem) -> std::string {
    for (const char* ext : {".jsonl", ".csv", ".json"})
      if (is_file(dir / (stem + ext))) return (dir / (stem + ext)).string();
    return "";
  };
  DatasetFiles files{spec, pick("test"), pick("train")};
  if (files.test.empty())
    throw SettingError<DatasetError>(Setting::Dataset, spec, "no test.jsonl, test.csv or test.json in " + dir.string());
  return files;
}

}  // namespace flexgen
