#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "flexgen/output_records.h"

using namespace flexgen;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("engine_out_" + name); }

OutputRecord record(int i) {
  OutputRecord r;
  r.uuid = "uuid-" + std::to_string(i);
  r.method = i % 2 ? "flex" : "avg";
  r.paraphrases = {"what is " + std::to_string(i) + "?", "say, \"" + std::to_string(i) + "\""};
  r.paraphrase_indexes = {0, 1};
  r.answers = {"ans " + std::to_string(i), "alias"};
  r.prediction = "ans " + std::to_string(i);
  r.generation = " ans " + std::to_string(i) + "\nQ: next, \"quoted\"";
  r.generated_ids = {100 + i, 13, 48};
  r.correct = true;
  r.correct_bidirectional = true;
  r.exact_match = i % 3 == 0;
  r.prompt_tokens = 200 + i;
  r.generated_tokens = 3;
  r.segments = {{1, 50}, {55, 99}};
  return r;
}

void write_all(const std::string& path, OutputFormat format, int from, int to, bool resume) {
  RecordWriter w(path, format, resume);
  for (int i = from; i < to; ++i) {
    const OutputRecord r = record(i);
    if (!w.done(record_key(r.uuid, r.method, r.paraphrase_index))) w.write(r);
  }
}

}  // namespace

TEST(OutputRecords, JsonLineHasAllFieldsInOrder) {
  OutputRecord r = record(3);
  r.paraphrase_seed = 42;
  const std::string line = format_record(r, OutputFormat::Jsonl);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_EQ(line.rfind("{\"uuid\":\"uuid-3\",\"method\":\"flex\",\"paraphrases\":", 0), 0u);
  const auto j = nlohmann::json::parse(line);
  std::vector<std::string> keys;
  const auto ordered = nlohmann::ordered_json::parse(line);
  for (const auto& [k, v] : ordered.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"uuid", "method", "paraphrases", "paraphrase_indexes", "paraphrase_seed",
                                             "answers", "prediction", "generation", "generated_ids", "correct",
                                             "correct_bidirectional", "exact_match", "prompt_tokens",
                                             "generated_tokens", "segments"}));
  EXPECT_EQ(j["segments"], nlohmann::json::parse("[[1,50],[55,99]]"));
  EXPECT_EQ(j["generation"], r.generation);
  EXPECT_EQ(j["exact_match"], true);
}

TEST(OutputRecords, InvalidUtf8IsReplacedNotThrown) {
  OutputRecord r = record(1);
  r.generation = "caf\xC3";  // cut mid-character
  const auto j = nlohmann::json::parse(format_record(r, OutputFormat::Jsonl));
  EXPECT_EQ(j["generation"], "caf\xEF\xBF\xBD");
}

TEST(OutputRecords, CsvRowsQuoteAndListAsJson) {
  EXPECT_EQ(csv_header(),
            "uuid,method,paraphrase_index,paraphrases,paraphrase_indexes,paraphrase_seed,answers,prediction,generation,"
            "generated_ids,correct,correct_bidirectional,exact_match,prompt_tokens,generated_tokens,segments,"
            "sample_index,run\n");
  OutputRecord r = record(2);
  r.paraphrase_index = 1;
  EXPECT_EQ(format_record(r, OutputFormat::Csv),
            "uuid-2,avg,1,\"[\"\"what is 2?\"\",\"\"say, \\\"\"2\\\"\"\"\"]\",\"[0,1]\",,\"[\"\"ans 2\"\",\"\"alias\"\"]\","
            "ans 2,\" ans 2\nQ: next, \"\"quoted\"\"\",\"[102,13,48]\",true,true,false,202,3,\"[[1,50],[55,99]]\",,\n");
  r.sample_index = 17;
  const std::string row = format_record(r, OutputFormat::Csv);
  const std::string tail = "\"[[1,50],[55,99]]\",17,\n";
  EXPECT_EQ(row.substr(row.size() - tail.size()), tail);
  r.run = R"({"dtype":"bf16","seed":0})";
  const std::string with_run = format_record(r, OutputFormat::Csv);
  const std::string run_tail = "17,\"{\"\"dtype\"\":\"\"bf16\"\",\"\"seed\"\":0}\"\n";
  EXPECT_EQ(with_run.substr(with_run.size() - run_tail.size()), run_tail);
  const auto j = nlohmann::json::parse(format_record(r, OutputFormat::Jsonl));
  EXPECT_EQ(j["run"]["dtype"], "bf16");
  EXPECT_EQ(parse_output_format("csv"), OutputFormat::Csv);
  EXPECT_THROW(parse_output_format("tsv"), std::invalid_argument);
}

TEST(OutputRecords, ResumeAfterAKillMidLineGivesTheUninterruptedFile) {
  for (OutputFormat format : {OutputFormat::Jsonl, OutputFormat::Csv}) {
    const std::string ext = format == OutputFormat::Csv ? ".csv" : ".jsonl";
    const std::string whole = tmp("whole" + ext), killed = tmp("killed" + ext);
    write_all(whole, format, 0, 8, false);
    const std::string expected = slurp(whole);
    // Cut points inside every kind of place: mid-line, inside a quoted line break, right after one.
    for (size_t cut : {expected.size() / 2, expected.find("\nQ: next", expected.size() / 3) + 1,
                       expected.find("\nQ: next", expected.size() / 3), expected.size() - 1, size_t(5)}) {
      std::ofstream(killed, std::ios::binary) << expected.substr(0, cut);
      {
        RecordWriter w(killed, format, true);
        EXPECT_LE(w.cut_bytes(), cut) << ext << " cut " << cut;
        for (int i = 0; i < 8; ++i) {
          const OutputRecord r = record(i);
          if (!w.done(record_key(r.uuid, r.method))) w.write(r);
        }
      }
      EXPECT_EQ(slurp(killed), expected) << ext << " cut at " << cut;
    }
    // Resuming a finished file adds nothing; resuming a missing file starts it.
    write_all(killed, format, 0, 8, true);
    EXPECT_EQ(slurp(killed), expected) << ext;
    std::remove(killed.c_str());
    write_all(killed, format, 0, 8, true);
    EXPECT_EQ(slurp(killed), expected) << ext;
  }
}

TEST(OutputRecords, ResumeKeysAndCounts) {
  const std::string path = tmp("keys.jsonl");
  write_all(path, OutputFormat::Jsonl, 0, 3, false);
  std::ofstream(path, std::ios::app) << "{\"uuid\": \"half";
  RecordWriter w(path, OutputFormat::Jsonl, true);
  EXPECT_EQ(w.resumed_records(), 3u);
  EXPECT_EQ(w.cut_bytes(), 14u);  // {"uuid": "half
  EXPECT_TRUE(w.done(record_key("uuid-1", "flex")));
  EXPECT_FALSE(w.done(record_key("uuid-1", "avg")));
  EXPECT_FALSE(w.done(record_key("uuid-3", "flex")));
  OutputRecord per = record(5);
  per.method = "per_prompt";
  per.paraphrase_index = 1;
  w.write(per);
  EXPECT_TRUE(w.done(record_key("uuid-5", "per_prompt", 1)));
  EXPECT_FALSE(w.done(record_key("uuid-5", "per_prompt", 0)));
}

TEST(OutputRecords, ResumeRefusesDamagedOrForeignFiles) {
  const std::string path = tmp("damaged.jsonl");
  std::ofstream(path, std::ios::binary) << format_record(record(0), OutputFormat::Jsonl) << "garbage\n"
                                        << format_record(record(1), OutputFormat::Jsonl);
  try {
    RecordWriter w(path, OutputFormat::Jsonl, true);
    FAIL();
  } catch (const OutputFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":2: not valid JSON", 0), 0u) << e.what();
  }
  const std::string csv_path = tmp("foreign.csv");
  std::ofstream(csv_path, std::ios::binary) << "a,b\n1,2\n";
  try {
    RecordWriter w(csv_path, OutputFormat::Csv, true);
    FAIL();
  } catch (const OutputFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(csv_path + ":1: not flexgen's CSV header; not a CSV results file; cannot resume this file", 0), 0u) << e.what();
  }
  EXPECT_THROW(RecordWriter("-", OutputFormat::Jsonl, true), std::invalid_argument);
}

// Resuming never cuts or rewrites what is not a half-written result of this format: such files
// are refused untouched, with file:line.
TEST(OutputRecords, ResumeRefusesWhatIsNotResultsOfThisFormatUntouched) {
  const std::string jsonl = tmp("finished.jsonl");
  write_all(jsonl, OutputFormat::Jsonl, 0, 4, false);
  const std::string csv = tmp("finished.csv");
  write_all(csv, OutputFormat::Csv, 0, 4, false);
  std::string binary = "\x7f" "ELF";
  for (int i = 0; i < 300; ++i) binary += static_cast<char>((i * 37) % 256);
  const std::string full = format_record(record(0), OutputFormat::Jsonl);
  struct Case {
    std::string name, text;
    OutputFormat format;
    std::string message;  // what the error starts with after "path"
  };
  const std::vector<Case> cases = {
      // A finished JSONL file resumed as CSV (was: truncated to 0 bytes, exit 0).
      {"jsonl_as_csv", slurp(jsonl), OutputFormat::Csv, ":"},
      // A finished CSV file resumed as JSONL.
      {"csv_as_jsonl", slurp(csv), OutputFormat::Jsonl, ":1: not valid JSON"},
      // Bytes that are not text (was: silently discarded).
      {"binary_jsonl", binary, OutputFormat::Jsonl, ":1: not a text file"},
      {"binary_csv", binary, OutputFormat::Csv, ":1: not a text file"},
      {"binary_no_nul", std::string(300, '\xff'), OutputFormat::Jsonl, ":1: the last line is neither a result"},
      {"binary_no_nul_csv", std::string(300, '\xff'), OutputFormat::Csv, ":1: "},
      // A last line without its newline that is no record's start.
      {"tail", full + "garbage", OutputFormat::Jsonl, ":2: the last line is neither a result"},
      // JSON objects that are not results.
      {"no_fields", "{\"uuid\": \"a\", \"method\": \"flex\"}\n", OutputFormat::Jsonl,
       ":1: not a result of flexgen generate (no field 'paraphrases')"},
      {"foreign_field", full.substr(0, full.size() - 2) + ",\"score\":1}\n", OutputFormat::Jsonl,
       ":1: not a result of flexgen generate (field 'score'"},
      {"huge_number", full + "{\"uuid\": \"b\", \"prompt_tokens\": 1e999}\n", OutputFormat::Jsonl,
       ":2: not valid JSON (number overflow"},
  };
  for (const Case& c : cases) {
    const std::string path = tmp("refused_" + c.name);
    std::ofstream(path, std::ios::binary) << c.text;
    try {
      RecordWriter w(path, c.format, true);
      ADD_FAILURE() << c.name << ": resumed";
    } catch (const OutputFileError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(path + c.message, 0), 0u) << c.name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("cannot resume"), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(path), c.text) << c.name << ": the file was changed";
  }
  // A CSV row whose cells are not a result's (a mangled boolean), with its line.
  std::string text = slurp(csv);
  const size_t at = text.find(",true,");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 6, ",yes,");
  const std::string mangled = tmp("mangled.csv");
  std::ofstream(mangled, std::ios::binary) << text;
  try {
    RecordWriter w(mangled, OutputFormat::Csv, true);
    ADD_FAILURE() << "resumed";
  } catch (const OutputFileError& e) {
    EXPECT_NE(std::string(e.what()).find("must be true or false"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(mangled + ":", 0), 0u) << e.what();
  }
  EXPECT_EQ(slurp(mangled), text);
}

// The records kept on resume are given whole to the check, before anything is cut.
TEST(OutputRecords, ResumeShowsTheKeptRecordsBeforeCutting) {
  const std::string path = tmp("kept.jsonl");
  write_all(path, OutputFormat::Jsonl, 0, 2, false);
  const std::string text = slurp(path) + "{\"uuid\":\"hal";
  std::ofstream(path, std::ios::binary) << text;
  try {
    RecordWriter w(path, OutputFormat::Jsonl, true, [&](const std::vector<StoredRecord>& kept) {
      ASSERT_EQ(kept.size(), 2u);
      EXPECT_EQ(kept[1].record.uuid, "uuid-1");
      EXPECT_EQ(kept[1].source, path + ":2");
      throw OutputFileError("refused");
    });
    ADD_FAILURE() << "resumed";
  } catch (const OutputFileError& e) {
    EXPECT_STREQ(e.what(), "refused");
  }
  EXPECT_EQ(slurp(path), text);
}

TEST(OutputRecords, ReadResultFileRoundTrips) {
  for (OutputFormat format : {OutputFormat::Jsonl, OutputFormat::Csv}) {
    const std::string path = tmp(format == OutputFormat::Csv ? "rt.csv" : "rt.jsonl");
    write_all(path, format, 0, 4, false);
    const auto rows = read_result_file(path);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[2].uuid, "uuid-2");
    EXPECT_EQ(rows[2].method, "avg");
    EXPECT_EQ(rows[2].answers, (std::vector<std::string>{"ans 2", "alias"}));
    EXPECT_EQ(rows[2].prediction.value(), "ans 2");
    EXPECT_EQ(rows[2].generation.value(), record(2).generation);
  }
}

TEST(OutputRecords, ReadReferenceCsv) {
  const std::string path = tmp("reference.csv");
  std::ofstream(path, std::ios::binary) << "id,answers,generation\n"
                                           "7,\"['Japanese yen', 'yen']\",\" The yen\nQ:\"\n"
                                           "8,Paris,London\n";
  const auto rows = read_result_file(path);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].uuid, "7");
  EXPECT_FALSE(rows[0].prediction);
  EXPECT_EQ(rows[0].answers, (std::vector<std::string>{"Japanese yen", "yen"}));
  EXPECT_EQ(rows[1].answers, std::vector<std::string>{"Paris"});
  EXPECT_EQ(rows[1].source, path + ":4");
  const std::string array = tmp("array.json");
  std::ofstream(array, std::ios::binary) << "[{\"answers\": [\"x\"], \"prediction\": \"x\"},\n {\"answers\": [1945]}]";
  try {
    read_result_file(array);
    FAIL();
  } catch (const OutputFileError& e) {
    EXPECT_EQ(std::string(e.what()), array + ": record 2: field 'answers' must be a list of strings");
  }
  const std::string bad = tmp("bad.csv");
  std::ofstream(bad, std::ios::binary) << "uuid,prediction\n1,x\n";
  try {
    read_result_file(bad);
    FAIL();
  } catch (const OutputFileError& e) {
    EXPECT_EQ(std::string(e.what()), bad + ":2: no answers (field answers, answer or gold_answers)");
  }
}

TEST(OutputRecords, SampleIndexIsTheLastJsonField) {
  OutputRecord r = record(4);
  r.sample_index = 9;
  const std::string line = format_record(r, OutputFormat::Jsonl);
  const std::string tail = "\"segments\":[[1,50],[55,99]],\"sample_index\":9}\n";
  EXPECT_EQ(line.substr(line.size() - tail.size()), tail);
}

TEST(OutputRecords, ReadRecordFileGivesBackWhatWasWritten) {
  std::vector<OutputRecord> records;
  for (int i = 0; i < 5; ++i) {
    OutputRecord r = record(i);
    r.sample_index = 2 * i;
    if (i == 1) r.paraphrase_index = 1;
    if (i == 2) r.paraphrase_seed = 18446744073709551615ull;
    if (i == 3) r.generation = "tab\there, ctrl \x01, caf\xC3\xA9, \\ / \"q\"\r\n";
    if (i == 4) r.uuid = "";
    records.push_back(r);
  }
  records[0].sample_index.reset();
  for (OutputFormat format : {OutputFormat::Jsonl, OutputFormat::Csv}) {
    const std::string path = tmp(format == OutputFormat::Csv ? "back.csv" : "back.jsonl");
    {
      RecordWriter w(path, format, false);
      for (const auto& r : records) w.write(r);
    }
    const RecordFile file = read_record_file(path);
    ASSERT_EQ(file.format, format);
    ASSERT_EQ(file.records.size(), records.size());
    std::string again = format == OutputFormat::Csv ? csv_header() : "";
    for (const auto& s : file.records) again += format_record(s.record, format);
    EXPECT_EQ(again, slurp(path));
    EXPECT_EQ(file.records[2].record.sample_index, 4);
    EXPECT_FALSE(file.records[0].record.sample_index);
    EXPECT_EQ(file.records[1].source, path + (format == OutputFormat::Csv ? ":4" : ":2"));  // record 0's generation spans 2 CSV lines
  }
  const std::string empty = tmp("empty.jsonl");
  std::ofstream(empty, std::ios::binary) << "";
  EXPECT_FALSE(read_record_file(empty).format);
  const std::string foreign = tmp("foreign.jsonl");
  std::ofstream(foreign, std::ios::binary) << format_record(record(0), OutputFormat::Jsonl)
                                           << "{\"uuid\":\"x\",\"method\":\"flex\",\"score\":1}\n";
  try {
    read_record_file(foreign);
    FAIL();
  } catch (const OutputFileError& e) {
    EXPECT_EQ(std::string(e.what()),
              foreign + ":2: not a flexgen output record: field 'score' is not a field of flexgen's output records");
  }
}

TEST(OutputRecords, ResumingACsvWithoutTheSampleIndexColumnKeepsItsColumns) {
  const std::string path = tmp("legacy.csv");
  std::string header = csv_header();
  header = header.substr(0, header.size() - std::string(",sample_index,run\n").size()) + "\n";
  OutputRecord first = record(0);
  std::string row = format_record(first, OutputFormat::Csv);
  row = row.substr(0, row.size() - 3) + "\n";  // without the empty sample_index and run cells
  std::ofstream(path, std::ios::binary) << header << row;
  {
    RecordWriter w(path, OutputFormat::Csv, true);
    EXPECT_TRUE(w.done(record_key("uuid-0", "avg")));
    OutputRecord next = record(1);
    next.sample_index = 1;
    w.write(next);
  }
  std::string next_row = format_record(record(1), OutputFormat::Csv);
  next_row = next_row.substr(0, next_row.size() - 3) + "\n";
  EXPECT_EQ(slurp(path), header + row + next_row);
  EXPECT_EQ(read_record_file(path).records.size(), 2u);
}
