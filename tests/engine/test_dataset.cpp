#include <gtest/gtest.h>

#include "../test_tmp.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "flexgen/dataset.h"
#include "flexgen/md5.h"
#include "flexgen/prompt.h"

using namespace flexgen;

namespace {

const std::string kData = std::string(FLEXGEN_SOURCE_DIR) + "/data";

Dataset read_text(const std::string& text, const std::string& name, DatasetReadOptions options = {}) {
  std::istringstream in(text);
  return read_dataset(in, name, options);
}

std::string error_of(const std::string& text, const std::string& name = "d.jsonl") {
  try {
    read_text(text, name);
  } catch (const DatasetError& e) {
    return e.what();
  }
  return "no error";
}

std::string write_tmp(const std::string& name, const std::string& text) {
  const std::string path = flexgen::testing::tmp_path("engine_" + name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

}  // namespace

TEST(BundledData, WebqaTest) {
  const Dataset d = read_dataset(kData + "/webqa/test.jsonl");
  EXPECT_GE(d.samples.size(), 40u);
  for (const Sample& s : d.samples) {
    EXPECT_EQ(s.kind, SampleKind::Question);
    EXPECT_EQ(s.uuid, md5_hex(s.question)) << s.source;
    ASSERT_EQ(s.paraphrases.size(), 6u) << s.source;
    EXPECT_EQ(s.paraphrases[0], s.question) << s.source;
    EXPECT_EQ(std::set<std::string>(s.paraphrases.begin(), s.paraphrases.end()).size(), 6u) << s.source;
    EXPECT_FALSE(s.answers.empty());
    for (const auto& p : s.paraphrases)
      for (char c : p) EXPECT_FALSE(c >= 'A' && c <= 'Z') << s.source << ": " << p;
  }
}

TEST(BundledData, WebqaTrainAndNoOverlap) {
  const Dataset train = read_dataset(kData + "/webqa/train.jsonl");
  const Dataset test = read_dataset(kData + "/webqa/test.jsonl");
  EXPECT_GE(train.samples.size(), 50u);
  std::set<std::string> test_questions;
  for (const auto& s : test.samples) test_questions.insert(s.question);
  for (const Sample& s : train.samples) {
    EXPECT_EQ(s.uuid, md5_hex(s.question)) << s.source;
    EXPECT_EQ(test_questions.count(s.question), 0u) << s.question;
    EXPECT_FALSE(s.answers.empty());
  }
}

TEST(BundledData, MyriadLama) {
  for (const char* file : {"test.jsonl", "train.jsonl"}) {
    const Dataset d = read_dataset(kData + "/myriadlama/" + file);
    EXPECT_GE(d.samples.size(), std::string(file) == "test.jsonl" ? 20u : 5u);
    for (const Sample& s : d.samples) {
      EXPECT_EQ(s.kind, SampleKind::MaskFill);
      EXPECT_EQ(s.uuid, md5_hex(s.manual_paraphrases[0])) << s.source;
      EXPECT_EQ(s.manual_paraphrases.size(), 5u) << s.source;
      EXPECT_GE(s.auto_paraphrases.size(), 10u) << s.source;
      EXPECT_FALSE(s.subject.empty());
      EXPECT_FALSE(s.relation.empty());
      for (const auto& p : s.paraphrases) EXPECT_NE(p.find(s.subject), std::string::npos) << p;
    }
  }
}

TEST(BundledData, SharedContextSplitsBeforeQ) {
  const Dataset train = read_dataset(kData + "/webqa/train.jsonl");
  const Dataset test = read_dataset(kData + "/webqa/test.jsonl");
  PromptBuilder builder(train.samples, 5, 42);
  ParaphraseSelection sel;
  for (const Sample& s : test.samples) {
    const PromptSet set = builder.build(s, sel);
    for (size_t i = 0; i < set.parts.size(); ++i) {
      EXPECT_EQ(set.full(i), set.shared + set.parts[i]);
      EXPECT_EQ(set.parts[i].rfind("Q: ", 0), 0u);
      EXPECT_EQ(set.shared.substr(set.shared.size() - 2), "\n\n");
    }
  }
}

TEST(Dataset, OurJsonlAndDefaults) {
  const Dataset d = read_text(
      "{\"question\": \"what is x?\", \"answers\": [\"x\", \"ex\"]}\n"
      "\n"
      "{\"uuid\": \"u2\", \"question\": \"q2?\", \"answers\": \"single\", \"paraphrases\": [\"q2?\", \"p1\"]}\r\n",
      "mine.jsonl");
  ASSERT_EQ(d.samples.size(), 2u);
  EXPECT_EQ(d.samples[0].uuid, md5_hex("what is x?"));
  EXPECT_EQ(d.samples[0].paraphrases, std::vector<std::string>{"what is x?"});
  EXPECT_EQ(d.samples[0].source, "mine.jsonl:1");
  EXPECT_EQ(d.samples[1].answers, std::vector<std::string>{"single"});
  EXPECT_EQ(d.samples[1].paraphrases.size(), 2u);
  EXPECT_EQ(d.samples[1].source, "mine.jsonl:3");
}

TEST(Dataset, ReferenceColumnsInJsonlAndCsv) {
  const Dataset j = read_text(
      "{\"uuid\": \"a\", \"question\": \"q?\", \"answers\": \"['Japanese yen', \\\"it's yen\\\"]\", "
      "\"paraphrase0\": \"q?\", \"paraphrase1\": \"p1\", \"paraphrase2\": \"p2\"}\n",
      "ref.jsonl");
  EXPECT_EQ(j.samples[0].answers, (std::vector<std::string>{"Japanese yen", "it's yen"}));
  EXPECT_EQ(j.samples[0].paraphrases, (std::vector<std::string>{"q?", "p1", "p2"}));
  const Dataset c = read_text(
      "uuid,question,answers,paraphrase0,paraphrase1,paraphrase2\n"
      "a,q?,\"['x, y', 'z']\",q?,\"p, 1\",\"p\n2\"\n"
      "b,r?,\"[\"\"json\"\"]\",r?,r1,r2\n",
      "ref.csv");
  ASSERT_EQ(c.samples.size(), 2u);
  EXPECT_EQ(c.samples[0].answers, (std::vector<std::string>{"x, y", "z"}));
  EXPECT_EQ(c.samples[0].paraphrases, (std::vector<std::string>{"q?", "p, 1", "p\n2"}));
  EXPECT_EQ(c.samples[1].answers, (std::vector<std::string>{"json"}));
  EXPECT_EQ(c.samples[1].source, "ref.csv:4");  // the quoted line break counts
}

TEST(Dataset, WebQuestionsRelease) {
  const Dataset d = read_text(
      "[\n{\"url\": \"http://www.freebase.com/view/en/japan\", "
      "\"targetValue\": \"(list (description \\\"Japanese yen\\\"))\", \"utterance\": \"what currency does japan use?\"},\n"
      " {\"url\": \"u\", \"targetValue\": \"(list (description Spanish) (description \\\"Rioplatense \\\\\\\"Spanish\\\\\\\"\\\"))\", "
      "\"utterance\": \"what language do argentinians speak?\"}]\n",
      "webquestions.test.json");
  ASSERT_EQ(d.samples.size(), 2u);
  EXPECT_EQ(d.samples[0].uuid, "f96d1c99939054611f8245e50e163bad");
  EXPECT_EQ(d.samples[0].answers, std::vector<std::string>{"Japanese yen"});
  EXPECT_EQ(d.samples[1].answers, (std::vector<std::string>{"Spanish", "Rioplatense \"Spanish\""}));
  EXPECT_EQ(d.samples[1].source, "webquestions.test.json: record 2");
}

TEST(Dataset, TargetValue) {
  EXPECT_EQ(parse_target_value("(list (description Paris))"), std::vector<std::string>{"Paris"});
  EXPECT_EQ(parse_target_value("(list (description \"New York City\") (description 1945))"),
            (std::vector<std::string>{"New York City", "1945"}));
  EXPECT_THROW(parse_target_value("Paris"), std::invalid_argument);
  EXPECT_THROW(parse_target_value("(list)"), std::invalid_argument);
  EXPECT_THROW(parse_target_value("(list (description \"open)"), std::invalid_argument);
}

TEST(Dataset, PromptsAndMaskFillRecords) {
  const Dataset d = read_text(
      "{\"uuid\": \"p\", \"prompts\": [\"Say A:\", \"Say B:\"]}\n"
      "{\"subject\": \"France\", \"relation\": \"P36\", \"answers\": [\"Paris\"], "
      "\"manual_paraphrases\": [\"The capital of France is [MASK].\"], \"auto_paraphrases\": [\"[MASK] is it.\"]}\n",
      "mixed.jsonl");
  EXPECT_EQ(d.samples[0].kind, SampleKind::RawPrompts);
  EXPECT_TRUE(d.samples[0].answers.empty());
  EXPECT_EQ(d.samples[1].kind, SampleKind::MaskFill);
  EXPECT_EQ(d.samples[1].uuid, md5_hex("The capital of France is [MASK]."));
  EXPECT_EQ(d.samples[1].paraphrases.size(), 2u);
}

TEST(Dataset, BadRecordsNameFileAndLine) {
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answers\": [\"a\"]}\n{\"question\": \"q2\", \"answers\": [\"a\"],}\n")
                .rfind("d.jsonl:2: not valid JSON: ", 0),
            0u);
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answers\": [\"a\"], \"paraphrases\": [\"q\", \"  \"]}\n"),
            "d.jsonl:1: paraphrase 1 is empty");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answers\": [\"a\"], \"paraphrase0\": \"q\", \"paraphrase1\": \"\"}\n"),
            "d.jsonl:1: paraphrase 1 is empty");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answers\": [\"a\"], \"paraphrases\": []}\n"),
            "d.jsonl:1: field 'paraphrases' is an empty list");
  EXPECT_EQ(error_of("{\"question\": \"q\"}\n"), "d.jsonl:1: no 'answers'");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answers\": []}\n"), "d.jsonl:1: 'answers' is an empty list");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answers\": [1]}\n"), "d.jsonl:1: field 'answers': item 0 is not a string");
  EXPECT_EQ(error_of("{\"answers\": [\"a\"]}\n"), "d.jsonl:1: no 'question' (nor paraphrases)");
  EXPECT_EQ(error_of("[1, 2]\n"), "d.jsonl: record 1: a record must be a JSON object");
  EXPECT_EQ(error_of("{\"uuid\": \"x\", \"question\": \"q\", \"answers\": [\"a\"]}\n"
                     "{\"uuid\": \"x\", \"question\": \"r\", \"answers\": [\"a\"]}\n"),
            "d.jsonl:2: uuid x repeats the record at d.jsonl:1");
  EXPECT_EQ(error_of("{\"subject\": \"s\", \"answers\": [\"a\"], \"manual_paraphrases\": [\"no mask\"]}\n"),
            "d.jsonl:1: manual paraphrase 0 has no [MASK]");
  EXPECT_EQ(error_of("question,answers\nq,a,extra\n", "d.csv"), "d.csv:2: has 3 fields; the header has 2");
  EXPECT_EQ(error_of("question,answers\n\"q,a\n", "d.csv"), "d.csv: line 2: a quoted field is never closed");
  EXPECT_EQ(error_of("[{\"utterance\": \"q\",\n \"targetValue\": }]", "w.json").rfind("w.json:2: not valid JSON", 0), 0u);
  EXPECT_EQ(error_of("  \n"), "d.jsonl: empty file");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"answers\": \"[broken\"}\n"),
            "d.jsonl:1: field 'answers': not a list of strings (expected a quoted string at character 2)");
}

TEST(Dataset, SkipBadKeepsTheRest) {
  DatasetReadOptions options;
  options.skip_bad = true;
  const Dataset d = read_text(
      "{\"question\": \"q1\", \"answers\": [\"a\"]}\n"
      "{broken\n"
      "{\"question\": \"q3\", \"answers\": [\"a\"], \"paraphrases\": [\"\"]}\n"
      "{\"question\": \"q4\", \"answers\": [\"a\"]}\n",
      "s.jsonl", options);
  ASSERT_EQ(d.samples.size(), 2u);
  ASSERT_EQ(d.skipped.size(), 2u);
  EXPECT_EQ(d.skipped[0].rfind("s.jsonl:2: not valid JSON", 0), 0u);
  EXPECT_EQ(d.skipped[1], "s.jsonl:3: paraphrase 0 is empty");
  EXPECT_THROW(read_text("{broken\n", "s.jsonl", options), DatasetError);  // nothing usable
}

TEST(Dataset, FilesAndDataDir) {
  const std::string path = write_tmp("small.jsonl", "{\"question\": \"q\", \"answers\": [\"a\"]}\n");
  EXPECT_EQ(read_dataset(path).samples[0].source, path + ":1");
  try {
    read_dataset(path + ".missing");
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_EQ(std::string(e.what()), path + ".missing: cannot open the dataset file");
  }
  EXPECT_THROW(find_data_dir("/no/such/folder"), DatasetError);
  EXPECT_EQ(find_data_dir(kData), kData);
  const DatasetFiles webqa = resolve_dataset("webqa", kData);
  EXPECT_EQ(webqa.test, kData + "/webqa/test.jsonl");
  EXPECT_EQ(webqa.train, kData + "/webqa/train.jsonl");
  EXPECT_EQ(resolve_dataset(path).test, path);
  EXPECT_TRUE(resolve_dataset(path).train.empty());
  EXPECT_THROW(resolve_dataset("/no/such.jsonl"), DatasetError);
  EXPECT_THROW(resolve_dataset("webqa", ::testing::TempDir()), DatasetError);  // no webqa/ there
}

TEST(Dataset, DataDirFromEnvironmentAndDefault) {
  ::unsetenv("FLEXGEN_DATA");
  // Not next to the test binary: the compiled-in source data folder is found.
  const std::string found = find_data_dir();
  EXPECT_TRUE(std::ifstream(found + "/webqa/test.jsonl").good()) << found;
  ::setenv("FLEXGEN_DATA", "/no/such/data", 1);
  try {
    find_data_dir();
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_EQ(std::string(e.what()), "FLEXGEN_DATA=/no/such/data: no such folder");
  }
  ::setenv("FLEXGEN_DATA", kData.c_str(), 1);
  EXPECT_EQ(find_data_dir(), kData);
  ::unsetenv("FLEXGEN_DATA");
}
