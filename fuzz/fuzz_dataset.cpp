// Dataset readers: JSON Lines, a JSON array (the WebQuestions release), CSV with a header row;
// the format is chosen by content, as `--dataset FILE` does.
//   Any input gives a dataset or a DatasetError whose message names the file (never another
//   exception, never a crash);
//   with --skip-bad the same input gives the same samples when it reads without it, and skips
//   at least one record when only it reads;
//   every sample has a uuid and a source naming the file; a question sample has paraphrases,
//   a mask-fill sample manual templates, a raw-prompt sample prompts.
#include <sstream>
#include <string>

#include "flexgen/dataset.h"
#include "fuzz_target.h"

namespace {

const char* const kName = "fuzz-input.jsonl";

bool same(const flexgen::Sample& a, const flexgen::Sample& b) {
  return a.kind == b.kind && a.uuid == b.uuid && a.question == b.question && a.answers == b.answers &&
         a.paraphrases == b.paraphrases && a.prompts == b.prompts && a.subject == b.subject &&
         a.relation == b.relation && a.manual_paraphrases == b.manual_paraphrases &&
         a.auto_paraphrases == b.auto_paraphrases && a.source == b.source;
}

}  // namespace

FLEXGEN_FUZZ_TARGET(dataset) {
  using namespace flexgen;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Dataset strict, lenient;
  const bool strict_ok = EXPECT_ONLY(DatasetError, kName, {
    std::istringstream in(text);
    strict = read_dataset(in, kName, DatasetReadOptions{false, true});
  });
  const bool lenient_ok = EXPECT_ONLY(DatasetError, kName, {
    std::istringstream in(text);
    lenient = read_dataset(in, kName, DatasetReadOptions{true, true});
  });
  if (strict_ok) {
    FUZZ_CHECK(strict.skipped.empty(), "skipped records without --skip-bad");
    FUZZ_CHECK(lenient_ok, "--skip-bad rejects a file that reads without it");
    FUZZ_CHECK(lenient.skipped.empty(), "--skip-bad skips a record that reads without it: " + lenient.skipped.front());
    FUZZ_CHECK(lenient.samples.size() == strict.samples.size(), "--skip-bad reads another number of samples");
    for (size_t i = 0; i < strict.samples.size(); ++i)
      FUZZ_CHECK(same(strict.samples[i], lenient.samples[i]), "--skip-bad reads sample " + std::to_string(i) + " differently");
  } else if (lenient_ok) {
    FUZZ_CHECK(!lenient.skipped.empty(), "the file reads only with --skip-bad, which skipped nothing");
  }
  for (const Dataset* d : {&strict, &lenient}) {
    for (const Sample& s : d->samples) {
      FUZZ_CHECK(!s.uuid.empty(), "a sample without a uuid at " + s.source);
      FUZZ_CHECK(s.source.rfind(kName, 0) == 0, "a sample's source does not name the file: " + s.source);
      switch (s.kind) {
        case SampleKind::Question:
          FUZZ_CHECK(!s.paraphrases.empty(), "a question sample without paraphrases at " + s.source);
          break;
        case SampleKind::MaskFill:
          FUZZ_CHECK(!s.manual_paraphrases.empty(), "a mask-fill sample without manual templates at " + s.source);
          break;
        case SampleKind::RawPrompts:
          FUZZ_CHECK(!s.prompts.empty(), "a raw-prompt sample without prompts at " + s.source);
          break;
      }
    }
    for (const std::string& m : d->skipped)
      FUZZ_CHECK(m.find(kName) != std::string::npos, "a skip message does not name the file: " + m);
  }
  return 0;
}
