// fuzz_seeds OUT: writes the generated seed corpora, OUT/<target>/..., from the bundled data
// (data/webqa, data/myriadlama), the tokenizer test corpus, the tests' tiny models
// (tests/data/model) and the byte-level tokenizer.json the tests make. `make fuzz` runs it
// before the targets; the committed seeds (fuzz/seeds/<target>) are hand-written cases.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "byte_tokenizer.h"
#include "flexgen/output_records.h"
#include "flexgen/safetensors_header.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path out_dir;
int written = 0;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = out_dir / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
  ++written;
}

std::vector<json> jsonl(const fs::path& p, size_t max) {
  std::vector<json> out;
  std::istringstream in(read(p));
  std::string line;
  while (out.size() < max && std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string lines(const std::vector<json>& records) {
  std::string out;
  for (const auto& r : records) out += r.dump() + "\n";
  return out;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string py_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    const bool dq = items[i].find('\'') != std::string::npos;
    out += (dq ? "\"" : "'") + items[i] + (dq ? "\"" : "'");
  }
  return out + "]";
}

void dataset_seeds(const fs::path& src) {
  const auto webqa = jsonl(src / "data/webqa/test.jsonl", 4);
  const auto lama = jsonl(src / "data/myriadlama/test.jsonl", 2);
  seed("dataset", "webqa.jsonl", lines(webqa));
  seed("dataset", "myriadlama.jsonl", lines(lama));
  // The reference's paraphrase0..N columns, as JSONL and as CSV (answers a Python list literal).
  std::string csv = "uuid,question,answers,paraphrase0,paraphrase1,paraphrase2\n";
  std::vector<json> columns;
  json webquestions = json::array();
  for (const auto& r : webqa) {
    const auto answers = r["answers"].get<std::vector<std::string>>();
    const auto paras = r["paraphrases"].get<std::vector<std::string>>();
    json c = {{"uuid", r["uuid"]}, {"question", r["question"]}, {"answers", py_list(answers)}};
    csv += csv_cell(r["uuid"]) + "," + csv_cell(r["question"]) + "," + csv_cell(py_list(answers));
    for (size_t i = 0; i < 3; ++i) {
      c["paraphrase" + std::to_string(i)] = paras.at(i);
      csv += "," + csv_cell(paras.at(i));
    }
    csv += "\n";
    columns.push_back(c);
    std::string target = "(list";
    for (const auto& a : answers) target += a.find(' ') == std::string::npos ? " (description " + a + ")" : " (description \"" + a + "\")";
    webquestions.push_back({{"url", "http://www.freebase.com/view/en/x"}, {"targetValue", target + ")"},
                            {"utterance", r["question"]}});
  }
  seed("dataset", "columns.jsonl", lines(columns));
  seed("dataset", "columns.csv", csv);
  seed("csv", "columns.csv", csv);
  seed("dataset", "webquestions.json", webquestions.dump(1));
  seed("list_literal", "webquestions-target", webquestions[0]["targetValue"].get<std::string>());
  seed("list_literal", "answers-python", py_list(webqa[0]["answers"].get<std::vector<std::string>>()));
  seed("list_literal", "answers-json", webqa[0]["answers"].dump());

  // Result files as `generate` writes them (JSONL and CSV, today's and older CSV headers).
  std::string out_jsonl, out_csv = flexgen::csv_header();
  std::string old_csv;
  for (size_t i = 0; i < webqa.size(); ++i) {
    const auto& r = webqa[i];
    flexgen::OutputRecord rec;
    rec.uuid = r["uuid"];
    rec.method = i % 2 ? "flex" : "per_prompt";
    if (i % 2 == 0) rec.paraphrase_index = 1;
    rec.paraphrases = {r["paraphrases"][0], r["paraphrases"][1]};
    rec.paraphrase_indexes = {0, 1};
    rec.answers = r["answers"].get<std::vector<std::string>>();
    rec.prediction = rec.answers.front();
    rec.generation = " " + rec.answers.front() + "\n\nQ:";
    rec.generated_ids = {220, 1234, 271, 48};
    rec.correct = rec.correct_bidirectional = rec.exact_match = i != 1;
    rec.prompt_tokens = 57;
    rec.generated_tokens = 4;
    rec.segments = {{1, 20}, {27, 45}};
    rec.sample_index = static_cast<int64_t>(i);
    rec.run = R"({"version":"0.1.0","model":"tiny","dtype":"fp32","batch_invariant":true,"seed":0})";
    out_jsonl += flexgen::format_record(rec, flexgen::OutputFormat::Jsonl);
    out_csv += flexgen::format_record(rec, flexgen::OutputFormat::Csv);
  }
  seed("results", "records.jsonl", out_jsonl);
  seed("results", "records.csv", out_csv);
  seed("csv", "records.csv", out_csv);
  // An older CSV (no sample_index, no run columns) and a half-written last line (a killed run).
  {
    std::istringstream in(out_csv);
    std::string header;
    std::getline(in, header);
    old_csv = header.substr(0, header.rfind(",sample_index")) + "\n";
    seed("results", "older-header.csv", old_csv);
  }
  seed("results", "half-written.jsonl", out_jsonl.substr(0, out_jsonl.size() - 40));
  // Another pipeline's files, as `eval` reads them.
  std::string other = "id,answer,pred\n";
  json arr = json::array();
  for (const auto& r : webqa) {
    other += csv_cell(r["uuid"]) + "," + csv_cell(py_list(r["answers"].get<std::vector<std::string>>())) + "," +
             csv_cell(r["answers"][0]) + "\n";
    arr.push_back({{"gold_answers", r["answers"]}, {"generated_text", r["answers"][0]}, {"method", "avg"}});
  }
  seed("results", "other-pipeline.csv", other);
  seed("results", "other-pipeline.json", arr.dump());
}

void tokenizer_seeds(const fs::path& src) {
  const json tok = flexgen::testing::byte_tokenizer_json();
  seed("tokenizer_json", "byte-tokenizer.json", tok.dump());
  const json config = {{"bos_token", "<|begin_of_text|>"}, {"eos_token", {{"content", "<|eot_id|>"}}},
                       {"chat_template", "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"}};
  seed("tokenizer_json", "byte-tokenizer-with-config.json", tok.dump() + std::string(1, '\0') + config.dump());
  json t = tok;
  t["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                     {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  t["added_tokens"][2]["lstrip"] = true;
  seed("tokenizer_json", "byte-tokenizer-post-processor.json", t.dump(1));
  t = tok;
  t["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  json pairs = json::array();
  for (const auto& m : tok["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  t["model"]["merges"] = pairs;
  seed("tokenizer_json", "byte-tokenizer-gpt2-pairs.json", t.dump());

  int n = 0;
  for (const char* file : {"tests/data/tokenizer/corpus.jsonl", "tests/data/tokenizer/chat.jsonl"}) {
    for (const auto& r : jsonl(src / file, 1000)) {
      std::string text;
      if (r.contains("text")) {
        text = r["text"];
      } else {
        for (const auto& m : r["messages"]) text += m["content"].get<std::string>() + "\n";
      }
      if (text.size() <= 2000) seed("tokenizer_roundtrip", "corpus-" + std::to_string(n++), text);
    }
  }
  for (const auto& r : jsonl(src / "data/webqa/test.jsonl", 3)) {
    std::string prompt = "Answer the question.\n\n";
    for (const auto& p : r.at("paraphrases")) prompt += "Q: " + p.get<std::string>() + "\nA:\n\n[SEP]\n\n";
    seed("tokenizer_roundtrip", "prompt-" + std::to_string(n++), prompt);
  }
}

void model_seeds(const fs::path& src) {
  for (const auto& e : fs::directory_iterator(src / "tests/data/model")) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    if (fs::exists(e.path() / "config.json")) {
      std::string seed_text = read(e.path() / "config.json");
      seed("model_config", name + "-config.json", seed_text);
      if (fs::exists(e.path() / "generation_config.json"))
        seed("model_config", name + "-with-generation.json",
             seed_text + std::string(1, '\0') + read(e.path() / "generation_config.json"));
    }
    for (const char* file : {"model.safetensors", "golden.safetensors"}) {
      const fs::path p = e.path() / file;
      if (!fs::exists(p)) continue;
      const std::string bytes = read(p);
      uint64_t n = 0;
      std::memcpy(&n, bytes.data(), 8);
      const uint64_t data_size = bytes.size() - 8 - n;
      std::string s(8, '\0');
      std::memcpy(s.data(), &data_size, 8);
      seed("safetensors_header", name + "-" + file, s + bytes.substr(0, 8 + n));
      // An index that puts the tensors of this file into two shards.
      const auto header = flexgen::parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                                           bytes.size(), p.string());
      json map = json::object();
      for (size_t i = 0; i < header.tensors.size(); ++i)
        map[header.tensors[i].name] = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
      seed("safetensors_index", name + "-" + std::string(file) + ".index.json",
           json({{"metadata", {{"total_size", data_size}}}, {"weight_map", map}}).dump(2));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  const fs::path src = FLEXGEN_SOURCE_DIR;
  dataset_seeds(src);
  tokenizer_seeds(src);
  model_seeds(src);
  std::printf("fuzz_seeds: %d seeds in %s\n", written, out_dir.c_str());
  return 0;
}
