// Result files: the reader of `flexgen eval` (ours and other pipelines' JSONL/CSV/JSON), the
// reader of our own records (`merge`, `--resume`) and the resuming writer.
//   Any input gives rows/records or an OutputFileError naming the file (never another
//   exception, never a crash).
//   Records read back are written again byte for byte: format_record() of each, read again,
//   gives the same text, and `eval` reads that file with one row per record.
//   When the input reads as records of one format, --resume in that format accepts it, keeps
//   those records (a last line without its newline may be cut) and appends after them; the file
//   then reads again with the new record last.
#include <string>
#include <vector>

#include "flexgen/output_records.h"
#include "fuzz_target.h"

namespace {

using namespace flexgen;

std::string text_of(const RecordFile& file) {
  std::string out;
  if (file.format == OutputFormat::Csv) out += csv_header();
  for (const auto& r : file.records) out += format_record(r.record, *file.format);
  return out;
}

OutputRecord new_record() {
  OutputRecord r;
  r.uuid = "fuzz-new-record";
  r.method = "flex";
  r.paraphrases = {"q?"};
  r.paraphrase_indexes = {0};
  r.answers = {"a"};
  r.prediction = "a";
  r.generation = "a\n";
  r.generated_ids = {64, 10};
  r.correct = r.correct_bidirectional = r.exact_match = true;
  r.prompt_tokens = 3;
  r.generated_tokens = 2;
  r.segments = {{1, 3}};
  r.sample_index = 0;
  r.run = "{\"version\":\"fuzz\"}";
  return r;
}

void check_resume(const std::string& input, bool read_ok, const RecordFile& original, OutputFormat format) {
  const std::string path = write_scratch(format == OutputFormat::Csv ? "resume.csv" : "resume.jsonl", input);
  const bool readable = read_ok && (original.format == format || !original.format);
  bool resumed = false;
  size_t kept = 0;
  std::string message;
  EXPECT_ONLY_MSG(OutputFileError, path, &message, {
    RecordWriter writer(path, format, true);
    kept = writer.resumed_records();
    writer.write(new_record());
    resumed = true;
  });
  // --resume is stricter than the reader (issue 18): a file holding NUL bytes is not a text file,
  // and a last line without a line end that is not the start of a record is not a half-written
  // record; both are refused untouched. A clean text file that reads must resume.
  const bool clean = input.find('\0') == std::string::npos && (input.empty() || input.back() == '\n');
  if (readable && clean) FUZZ_CHECK(resumed, "--resume refuses a file of its format that reads: " + message);
  if (!resumed || !readable) return;
  RecordFile after;
  std::string why;
  FUZZ_CHECK(EXPECT_ONLY_MSG(OutputFileError, path, &why, { after = read_record_file(path); }),
             "the resumed file does not read: " + why);
  FUZZ_CHECK(after.format == format, "the resumed file reads in another format");
  FUZZ_CHECK(!after.records.empty(), "the resumed file lost the new record");
  const OutputRecord& last = after.records.back().record;
  FUZZ_CHECK(last.uuid == "fuzz-new-record" && last.method == "flex", "the new record is not last");
  const size_t before = after.records.size() - 1;
  FUZZ_CHECK(before <= original.records.size() && before + 1 >= original.records.size(),
             "resuming kept " + std::to_string(before) + " of " + std::to_string(original.records.size()) + " records");
  for (size_t i = 0; i < before; ++i)
    FUZZ_CHECK(format_record(after.records[i].record, format) == format_record(original.records[i].record, format),
               "resuming changed record " + std::to_string(i));
  FUZZ_CHECK(kept <= before, "more resumed keys than records kept");
}

}  // namespace

FLEXGEN_FUZZ_TARGET(results) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::string path = write_scratch("results.txt", input);

  EXPECT_ONLY(OutputFileError, path, { (void)read_result_file(path); });

  RecordFile file;
  const bool read_ok = EXPECT_ONLY(OutputFileError, path, { file = read_record_file(path); });
  if (read_ok && file.format) {
    const std::string text = text_of(file);
    const std::string again_path = write_scratch("again.txt", text);
    RecordFile again;
    std::string why;
    FUZZ_CHECK(EXPECT_ONLY_MSG(OutputFileError, again_path, &why, { again = read_record_file(again_path); }),
               "records written again do not read: " + why);
    FUZZ_CHECK(again.format == file.format, "records written again read in another format");
    FUZZ_CHECK(text_of(again) == text, "records written again read differently:\n" + text + "\n" + text_of(again));
    if (!file.records.empty()) {  // (a file without records is "no rows" to eval)
      std::vector<ResultRow> rows;
      FUZZ_CHECK(EXPECT_ONLY_MSG(OutputFileError, again_path, &why, { rows = read_result_file(again_path); }),
                 "eval does not read records written by format_record: " + why);
      FUZZ_CHECK(rows.size() == file.records.size(), "eval reads another number of rows");
    }
  }
  check_resume(input, read_ok, file, OutputFormat::Jsonl);
  check_resume(input, read_ok, file, OutputFormat::Csv);
  return 0;
}
