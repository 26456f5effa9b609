#include "flexgen/paraphrase.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "flexgen/setting_error.h"
#include "flexgen/dataset.h"
#include "flexgen/jsonl_writer.h"
#include "flexgen/decoder.h"
#include "flexgen/methods.h"
#include "flexgen/shard.h"

namespace flexgen {

namespace {

// Output file that keeps its complete records on --resume: a half-written last line
// (a killed run) is cut, the uuids already there are skipped, new records are appended.
class ParaphraseWriter {
 public:
  ParaphraseWriter(const std::string& path, bool resume) {
    if (path == "-") {
      out_.emplace(path);
      return;
    }
    if (resume && std::filesystem::exists(path)) {
      std::ifstream in(path, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
      const std::string refuse = "; cannot resume this file (give another output file, or remove it)";
      std::istringstream lines(text.substr(0, keep));
      int64_t number = 0;
      for (std::string line; std::getline(lines, line);) {
        ++number;
        if (line.empty()) continue;
        const std::string where = path + ":" + std::to_string(number);
        if (line.find('\0') != std::string::npos) throw std::runtime_error(where + ": not a text file" + refuse);
        const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object() || !j.contains("uuid") || !j["uuid"].is_string() || !j.contains("paraphrases") ||
            !j["paraphrases"].is_array())
          throw std::runtime_error(where + ": not a paraphrase record (an object with uuid and paraphrases)" + refuse);
        done_.insert(j["uuid"].get<std::string>());
      }
      if (keep < text.size()) {
        // Only the start of a record (a run killed mid-write) is cut; anything else is refused.
        const std::string tail = text.substr(keep), start = "{\"uuid\":";
        const bool record_start = tail.compare(0, start.size(), start, 0, std::min(start.size(), tail.size())) == 0;
        if (!record_start || std::any_of(tail.begin(), tail.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
          throw std::runtime_error(path + ":" + std::to_string(number + 1) +
                                   ": the last line is neither a paraphrase record nor the start of one" + refuse);
        std::filesystem::resize_file(path, keep);
        spdlog::info("{}: cut a half-written last line ({} bytes)", path, text.size() - keep);
      }
    }
    out_.emplace(path, resume);
  }

  bool done(const std::string& uuid) const { return done_.count(uuid) > 0; }
  size_t resumed() const { return done_.size(); }
  void write(const nlohmann::ordered_json& record) { out_->write_line(record.dump()); }

 private:
  std::optional<JsonlWriter> out_;
  std::set<std::string> done_;
};

}  // namespace

const std::vector<ParaphraseExample>& paraphrase_examples() {
  static const std::vector<ParaphraseExample> examples = {
      {"What is the capital city of Australia?",
       {"Which city serves as Australia's capital?", "Australia's seat of government is located in which city?",
        "Can you name the capital of Australia?", "In which city is the Australian capital found?",
        "Which Australian city holds the title of national capital?"}},
      {"Who wrote the novel Pride and Prejudice?",
       {"Which author is responsible for Pride and Prejudice?", "Pride and Prejudice was written by whom?",
        "Who is the writer behind the book Pride and Prejudice?", "Can you tell me who penned Pride and Prejudice?",
        "Whose novel is Pride and Prejudice?"}},
      {"When did the Berlin Wall fall?",
       {"In what year did the Berlin Wall come down?", "At what point in history was the Berlin Wall torn down?",
        "When was the Berlin Wall brought down?", "What was the date of the fall of the Berlin Wall?",
        "The Berlin Wall collapsed in which year?"}},
      {"What language do people speak in Brazil?",
       {"Which language is spoken by Brazilians?", "What is the main language used in Brazil?",
        "In Brazil, what language do the people talk in?", "Brazilians communicate in which language?",
        "What tongue is commonly spoken across Brazil?"}},
      {"How many players are on a soccer team?",
       {"What is the number of players in a soccer team?", "A soccer side is made up of how many players?",
        "How many people play for one team in soccer?", "How large is a soccer team in terms of players?",
        "On the field, how many players does a football team have?"}},
  };
  return examples;
}

std::string paraphrase_prompt(const std::string& question, size_t round) {
  if (round >= kParaphraseRounds)
    throw std::invalid_argument("paraphrase round " + std::to_string(round) + " is out of range (0.." +
                                std::to_string(kParaphraseRounds - 1) + ")");
  std::string p = std::string(kParaphraseInstruction) + "\n\n";
  for (const ParaphraseExample& e : paraphrase_examples())
    p += "Question: " + e.question + "\nParaphrase: " + e.paraphrases[round] + "\n\n";
  return p + "Question: " + question + "\nParaphrase:";
}

std::string paraphrase_from_generation(const std::string& generation) {
  const std::string line = generation.substr(0, generation.find('\n'));
  const char* ws = " \t\r\f\v";
  const size_t a = line.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return line.substr(a, line.find_last_not_of(ws) - a + 1);
}

ParaphraseSummary run_paraphrase(const ParaphraseOptions& o, const LlamaModel& model, const Tokenizer& tokenizer) {
  ParaphraseSummary summary;
  if (o.max_new_tokens >= model.config.max_position_embeddings)
    throw InvalidSetting(Setting::MaxNewTokens, std::to_string(o.max_new_tokens),
                         "the model's context is " + std::to_string(model.config.max_position_embeddings) +
                             " positions (" + model.config.source + "), prompt included");
  const Dataset ds = read_dataset(o.input);
  const std::vector<size_t> indices = select_samples(ds.samples.size(), Shard{}, o.max_samples);
  for (size_t idx : indices)
    if (ds.samples[idx].kind != SampleKind::Question)
      throw std::invalid_argument(ds.samples[idx].source + ": not a question record (paraphrase reads QA files)");
  ParaphraseWriter writer(o.output, o.resume);
  if (o.resume && writer.resumed() > 0) spdlog::info("resuming: {} records already in {}", writer.resumed(), o.output);

  DecodeConfig decode;
  decode.max_new_tokens = o.max_new_tokens;
  decode.stops = parse_stop_criteria("eos,newline");  // only the first line is kept
  decode.stops.eos_ids.assign(model.config.eos_token_ids.begin(), model.config.eos_token_ids.end());
  if (decode.stops.eos_ids.empty() && tokenizer.eos_id()) decode.stops.eos_ids.push_back(*tokenizer.eos_id());
  if (tokenizer.eos_id()) decode.pad_id = *tokenizer.eos_id();
  decode.sampling.temperature = o.temperature;
  decode.sampling.top_p = o.top_p;
  decode.sampling.validate();
  MethodOptions method;
  method.method = Method::Origin;
  method.max_new_tokens = o.max_new_tokens;

  for (size_t idx : indices) {
    const Sample& s = ds.samples[idx];
    if (writer.done(s.uuid)) {
      ++summary.skipped_done;
      continue;
    }
    // One origin-style row per round, decoded together; stream i samples with seed + i.
    std::vector<RowPlan> rows;
    std::vector<StreamPlan> streams;
    for (size_t round = 0; round < kParaphraseRounds; ++round) {
      SampleTokens t;
      t.bos = tokenizer.bos_id();
      t.paraphrases = {tokenizer.encode(paraphrase_prompt(s.question, round))};
      SamplePlan plan = plan_sample(t, method, o.seed + round);
      streams.push_back(plan.streams.at(0));
      streams.back().rows = {static_cast<int32_t>(rows.size())};
      rows.push_back(std::move(plan.rows.at(0)));
    }
    const std::vector<StreamResult> results = decode_streams(model, tokenizer, rows, streams, decode);
    nlohmann::ordered_json rec;
    rec["uuid"] = s.uuid;
    rec["question"] = s.question;
    rec["answers"] = s.answers;
    std::vector<std::string> paras = {s.question};
    for (size_t round = 0; round < results.size(); ++round) {
      std::string p = paraphrase_from_generation(results[round].text);
      if (p.empty()) {
        spdlog::warn("{} (uuid {}): round {} gave an empty first line; the question is used instead", s.source,
                     s.uuid, round);
        ++summary.empty_outputs;
        p = s.question;
      }
      paras.push_back(std::move(p));
    }
    rec["paraphrases"] = paras;
    writer.write(rec);
    ++summary.written;
    spdlog::debug("{}: {}", s.uuid, nlohmann::json(paras).dump());
  }
  return summary;
}

}  // namespace flexgen
