// Issue 18: `flexgen generate` never loses data, checks what it is given before it loads the
// model or allocates, says what is wrong in one line naming the file or flag, and stops cleanly on
// SIGINT/SIGTERM/SIGHUP. Runs the built binary on a tiny model directory.
#include <gtest/gtest.h>

#include "../test_tmp.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <tuple>

#include "../cli/run_command.h"
#include "tiny_model_dir.h"

using flexgen::testing::run_flexgen;
using flexgen::testing::slurp;

namespace {

std::string tmp(const std::string& name) { return flexgen::testing::tmp_path("safety_" + name); }

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

size_t count_lines(const std::string& path) {
  const std::string s = slurp(path);
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

// A ZIP archive of one stored (uncompressed) file.
std::string stored_zip(const std::string& name, const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  std::string out;
  auto u16 = [&](uint32_t v) { out += static_cast<char>(v & 0xFF), out += static_cast<char>((v >> 8) & 0xFF); };
  auto u32 = [&](uint32_t v) { u16(v & 0xFFFF), u16(v >> 16); };
  const auto size = static_cast<uint32_t>(data.size()), name_len = static_cast<uint32_t>(name.size());
  u32(0x04034b50), u16(20), u16(0), u16(0), u16(0), u16(0), u32(crc), u32(size), u32(size), u16(name_len), u16(0);
  out += name + data;
  const auto central = static_cast<uint32_t>(out.size());
  u32(0x02014b50), u16(20), u16(20), u16(0), u16(0), u16(0), u16(0), u32(crc), u32(size), u32(size), u16(name_len);
  u16(0), u16(0), u16(0), u16(0), u32(0), u32(0);
  out += name;
  const auto central_size = static_cast<uint32_t>(out.size()) - central;
  u32(0x06054b50), u16(0), u16(0), u16(1), u16(1), u32(central_size), u32(central), u16(0);
  return out;
}

class CliSafety : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_dir_ = new std::string(flexgen::testing::write_tiny_model_dir(tmp("model"))); }
  static void TearDownTestSuite() { delete model_dir_; }
  static std::string base() {
    return "generate -q --model '" + *model_dir_ + "' --dtype fp32 --threads 1 --few-shot 1 ";
  }
  static inline std::string* model_dir_ = nullptr;
};

}  // namespace

// --resume refuses, untouched and with file:line, a file that is not results of this format or of
// this run's configuration.
TEST_F(CliSafety, ResumeRefusesWhatIsNotThisRunsResults) {
  const std::string args = "--max-samples 2 --max-new-tokens 2 ";
  const std::string jsonl = tmp("done.jsonl"), csv = tmp("done.csv");
  ASSERT_EQ(run_flexgen(base() + args + "--output " + jsonl, tmp("w1")).exit_code, 0);
  ASSERT_EQ(run_flexgen(base() + args + "--format csv --output " + csv, tmp("w2")).exit_code, 0);
  const std::string jsonl_text = slurp(jsonl), csv_text = slurp(csv);
  ASSERT_EQ(count_lines(jsonl), 2u);

  struct Case {
    std::string name, text, args, message;
  };
  std::string mangled = csv_text;
  const size_t at = mangled.find(",flex,");
  ASSERT_NE(at, std::string::npos);
  mangled.replace(at, 6, ",flx,");
  const std::vector<Case> cases = {
      // A finished JSONL file resumed as CSV (was: truncated to 0 bytes, exit 0).
      {"jsonl_as_csv", jsonl_text, "--format csv", ":1: "},
      {"binary", std::string("\x7f" "ELF\x02\x01\x01", 7) + std::string(200, '\xff'), "", ":1: "},
      {"not_a_result", "{\"uuid\": \"x\", \"method\": \"flex\"}\n", "", ":1: not a result of flexgen generate"},
      // Results of another configuration.
      {"method", jsonl_text, "--method avg", ":1: a record of method 'flex'; this run's method is 'avg'"},
      {"paraphrases", jsonl_text, "--num-paraphrases 3", ":1: paraphrases [0, 1, 2, 3, 4] of uuid"},
      {"mangled_csv_method", mangled, "--format csv", ":2: a record of method 'flx'"},
  };
  for (const Case& c : cases) {
    const std::string path = tmp("resume_" + c.name);
    write_file(path, c.text);
    const auto r = run_flexgen(base() + args + c.args + " --resume --output " + path, tmp("r"));
    EXPECT_EQ(r.exit_code, 1) << c.name << "\n" << r.err;
    EXPECT_NE(r.err.find(path + c.message), std::string::npos) << c.name << " -> " << r.err;
    EXPECT_NE(r.err.find("cannot resume"), std::string::npos) << c.name << " -> " << r.err;
    EXPECT_EQ(slurp(path), c.text) << c.name << ": the file was changed";
  }
  // Results of another model (its fingerprint differs).
  const std::string other = flexgen::testing::write_tiny_model_dir(tmp("other_model"), 11);
  {
    auto config = nlohmann::json::parse(slurp(other + "/config.json"));
    config["rms_norm_eps"] = 1e-5;
    write_file(other + "/config.json", config.dump());
  }
  const std::string path = tmp("resume_model.jsonl");
  write_file(path, jsonl_text);
  const auto r = run_flexgen("generate -q --model '" + other + "' --dtype fp32 --threads 1 --few-shot 1 " + args +
                                 "--resume --output " + path,
                             tmp("r"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(path + ":1: a record of another model"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(path), jsonl_text);
  // The run's own results resume (and add nothing).
  const auto same = run_flexgen(base() + args + "--resume --output " + jsonl, tmp("r"));
  EXPECT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(slurp(jsonl), jsonl_text);
}

// No output may be an input (the input would be overwritten by results) or another output; every
// output's folder is checked before the model loads.
TEST_F(CliSafety, OutputsAreCheckedBeforeTheRunAndNeverAnInput) {
  const std::string dataset = tmp("input.jsonl");
  const std::string data =
      "{\"uuid\": \"a\", \"question\": \"q?\", \"answers\": [\"x\"], \"paraphrases\": [\"q?\", \"r?\"]}\n";
  write_file(dataset, data);
  const std::string args = "--dataset " + dataset + " --few-shot 0 --num-paraphrases 2 --max-new-tokens 2 ";
  std::filesystem::create_directories(tmp("a_folder_out"));
  struct Case {
    std::string args;
    int code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"--output " + dataset, 2, "--output " + dataset + ": the same file as --dataset"},
      {"--summary " + dataset, 2, "--summary " + dataset + ": the same file as --dataset"},
      {"--save-tokens " + dataset, 2, "--save-tokens " + dataset + ": the same file as --dataset"},
      {"--output " + tmp("o.jsonl") + " --summary " + tmp("o.jsonl"), 2, "--summary " + tmp("o.jsonl") + ": the same file as --output"},
      {"--output " + *model_dir_ + "/config.json", 2, "the same file as a file of --model"},
      {"--summary /nonexistent/dir/s.json", 1, "--summary /nonexistent/dir/s.json: folder /nonexistent/dir does not exist"},
      {"--output /nonexistent/dir/o.jsonl", 1, "--output /nonexistent/dir/o.jsonl: folder /nonexistent/dir does not exist"},
      {"--output " + tmp("a_folder_out"), 1, "--output " + tmp("a_folder_out") + ": is a folder, not a file"},
  };
  for (const Case& c : cases) {
    const auto r = run_flexgen(base() + args + c.args, tmp("paths"));
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << " -> " << r.err;
    // Refused before the model loads (its log line would come first) and before any output.
    EXPECT_EQ(r.err.find("loaded in"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << " -> " << r.err;
    EXPECT_EQ(slurp(dataset), data) << c.args;
  }
  // paraphrase: its output may not be its input either.
  const auto p = run_flexgen("paraphrase -q --model '" + *model_dir_ + "' --dtype fp32 --threads 1 --dataset " +
                                 dataset + " --output " + dataset,
                             tmp("para"));
  EXPECT_EQ(p.exit_code, 2) << p.err;
  EXPECT_NE(p.err.find("--output " + dataset + ": the same file as --dataset"), std::string::npos) << p.err;
  EXPECT_EQ(slurp(dataset), data);
  // paraphrase --resume refuses a file that is not its records, untouched.
  const std::string binary = tmp("para_binary.jsonl");
  const std::string bytes = std::string("\x7f" "ELF\x02\x01", 6) + std::string(100, '\xfe');
  write_file(binary, bytes);
  const auto pr = run_flexgen("paraphrase -q --model '" + *model_dir_ + "' --dtype fp32 --threads 1 --dataset " +
                                  dataset + " --resume --output " + binary,
                              tmp("para_bin"));
  EXPECT_EQ(pr.exit_code, 1) << pr.err;
  EXPECT_NE(pr.err.find(binary + ":1: the last line is neither a paraphrase record"), std::string::npos) << pr.err;
  EXPECT_EQ(slurp(binary), bytes);
  // mask --image into a folder that does not exist says so.
  const auto m = run_flexgen("mask --segments 3,4 --image /nonexistent/dir/m.svg", tmp("mask"));
  EXPECT_EQ(m.exit_code, 1) << m.err;
  EXPECT_NE(m.err.find("--image /nonexistent/dir/m.svg: folder /nonexistent/dir does not exist"), std::string::npos)
      << m.err;
}

// Sizes are checked before anything is sized by them; negative counts are usage errors; messages
// name the flag or file:line and carry no library internals.
TEST_F(CliSafety, SizesAndCountsAreCheckedFirst) {
  struct Case {
    std::string args;
    int code;
    std::string message;
  };
  const std::string dir_dataset = tmp("a_folder");
  std::filesystem::create_directories(dir_dataset);
  const std::vector<Case> cases = {
      // Was: ~12 GB allocated for 35-50 s, then the context error (2e9: std::bad_alloc).
      {"--max-new-tokens 1000000000 --stop none", 1, "--max-new-tokens 1000000000: the model's context is"},
      {"--max-new-tokens 2000000000 --stop none", 1, "--max-new-tokens 2000000000: the model's context is"},
      {"--block-size 100000", 1, "--block-size 100000: larger than the model's context"},
      {"--block-size 0", 2, "--block-size"},
      {"--block-size -5", 2, "--block-size: must be at least 1, got -5"},
      // Were: wrapped around ("18446744073709551615 asked for") or "run everything".
      {"--num-paraphrases -1", 2, "--num-paraphrases: must be at least 1, got -1"},
      {"--max-samples -1", 2, "--max-samples: must be at least 1, got -1"},
      {"--max-samples 0", 2, "--max-samples: must be at least 1, got 0"},
      {"--few-shot -2", 2, "--few-shot: must be at least 0, got -2"},
      {"--seed -1", 2, "--seed: must be at least 0, got -1"},
      {"--top-k -3", 2, "--top-k: must be at least 0, got -3"},
      {"--batch-size -1", 2, "--batch-size: must be at least 1, got -1"},
      // Messages name their flag.
      {"--indexes 0,x", 2, "--indexes: "},
      {"--separator 'a\\'", 2, "--separator: "},
      {"--shard 3/2", 2, "--shard: "},
      {"--positions sideways", 2, "--positions: "},
      {"--dataset " + dir_dataset, 1, "--dataset " + dir_dataset + ": is a directory"},
  };
  for (const Case& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_flexgen(base() + "--max-samples 1 " + c.args, tmp("sizes"));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << " -> " << r.err;
    EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
    EXPECT_LT(secs, 20.0) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
  }
}

// A config.json limit of zero or less would turn the context check off: refused.
TEST_F(CliSafety, ConfigSizesThatWouldDisableChecksAreRefused) {
  for (int v : {0, -1}) {
    const std::string dir = flexgen::testing::write_tiny_model_dir(tmp("ctx_model" + std::to_string(-v)));
    auto config = nlohmann::json::parse(slurp(dir + "/config.json"));
    config["max_position_embeddings"] = v;
    write_file(dir + "/config.json", config.dump());
    const auto r = run_flexgen("generate -q --model '" + dir + "' --dtype fp32 --threads 1 --max-samples 1", tmp("ctx"));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(dir + "/config.json: \"max_position_embeddings\" must be positive"), std::string::npos) << r.err;
  }
}

// JSON numbers that do not fit a double (1e999) are reported with file:line wherever JSON is read,
// and --skip-bad skips such a dataset record.
TEST_F(CliSafety, JsonNumbersOutOfRangeNameTheFileAndLine) {
  const std::string good = "{\"uuid\": \"a\", \"question\": \"q?\", \"answers\": [\"x\"], \"paraphrases\": [\"q?\", \"r?\"]}\n";
  const std::string bad = "{\"uuid\": \"b\", \"question\": \"q?\", \"answers\": [\"x\"], \"n\": 1e999, \"paraphrases\": [\"q?\"]}\n";
  const std::string dataset = tmp("huge.jsonl");
  write_file(dataset, good + bad);
  const std::string args = "--few-shot 0 --num-paraphrases 2 --max-new-tokens 2 ";
  const auto r = run_flexgen(base() + args + "--dataset " + dataset, tmp("huge"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dataset + ":2: not valid JSON"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("json.exception"), std::string::npos) << r.err;
  const auto skip = run_flexgen(base() + args + "--skip-bad --dataset " + dataset, tmp("huge_skip"));
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_EQ(std::count(skip.out.begin(), skip.out.end(), '\n'), 1) << skip.out;

  // --weights
  const std::string weights = tmp("weights.jsonl");
  write_file(weights, "{\"uuid\": \"a\", \"weights\": [1, 1e999]}\n");
  write_file(dataset, good);
  const auto w = run_flexgen(base() + args + "--dataset " + dataset + " --method weighted_avg --weights " + weights,
                             tmp("huge_w"));
  EXPECT_EQ(w.exit_code, 1) << w.err;
  EXPECT_NE(w.err.find(weights + ":1: not valid JSON"), std::string::npos) << w.err;
  EXPECT_EQ(w.err.find("json.exception"), std::string::npos) << w.err;

  // eval input
  const std::string results = tmp("results.jsonl");
  write_file(results, "{\"answers\": [\"x\"], \"prediction\": \"x\", \"score\": 1e999}\n");
  const auto e = run_flexgen("eval " + results, tmp("huge_e"));
  EXPECT_EQ(e.exit_code, 1) << e.err;
  EXPECT_NE(e.err.find(results + ":1: not valid JSON"), std::string::npos) << e.err;
  EXPECT_EQ(e.err.find("json.exception"), std::string::npos) << e.err;

  // tokenizer.json
  const std::string dir = flexgen::testing::write_tiny_model_dir(tmp("huge_tok_model"));
  std::string tok = slurp(dir + "/tokenizer.json");
  const size_t at = tok.find("\"vocab\"");
  ASSERT_NE(at, std::string::npos);
  tok.insert(at, "\"dropout\": 1e999, ");
  write_file(dir + "/tokenizer.json", tok);
  const auto t = run_flexgen("generate -q --model '" + dir + "' --dtype fp32 --threads 1 --max-samples 1", tmp("huge_t"));
  EXPECT_EQ(t.exit_code, 1) << t.err;
  EXPECT_NE(t.err.find(dir + "/tokenizer.json"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("not valid JSON"), std::string::npos) << t.err;
  EXPECT_EQ(t.err.find("json.exception"), std::string::npos) << t.err;
}

// A tokenizer.json with one token id near 1e9 is refused without allocating gigabytes.
TEST_F(CliSafety, TokenIdsFarBeyondAnyVocabularyAreRefused) {
  const std::string dir = flexgen::testing::write_tiny_model_dir(tmp("big_id_model"));
  auto tok = nlohmann::json::parse(slurp(dir + "/tokenizer.json"));
  auto& vocab = tok["model"]["vocab"];
  ASSERT_TRUE(vocab.is_object() && !vocab.empty());
  vocab[vocab.begin().key()] = 999999999;
  write_file(dir + "/tokenizer.json", tok.dump());
  const auto r = run_flexgen("generate -q --model '" + dir + "' --dtype fp32 --threads 1 --max-samples 1", tmp("big_id"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir + "/tokenizer.json: model.vocab: token"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("999999999"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
}

namespace {

// Starts `flexgen <args>` (stdout and stderr to files) and returns its pid.
pid_t spawn_flexgen(const std::string& args, const std::string& err_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = std::string("exec '") + FLEXGEN_BINARY + "' " + args + " >/dev/null 2>'" + err_path + "'";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

bool wait_for_lines(const std::string& path, size_t n, pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count_lines(path) < n && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;  // it ended already
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return count_lines(path) >= n;
}

}  // namespace

// SIGINT/SIGTERM/SIGHUP: the run stops between records (only whole lines in the output), writes the
// summary marked as interrupted, says how to resume, exits 128 + the signal; --resume then gives
// the file an uninterrupted run writes.
TEST_F(CliSafety, SignalsStopBetweenRecordsAndResumeFinishes) {
  const std::string args = "--max-samples 30 --method per_prompt --num-paraphrases 3 --max-new-tokens 16 --stop none ";
  const std::string full = tmp("sig_full.jsonl");
  std::remove(full.c_str());
  ASSERT_EQ(run_flexgen(base() + args + "--output " + full, tmp("sig_full")).exit_code, 0);
  ASSERT_EQ(count_lines(full), 90u);

  for (const auto& [sig, code, name] : {std::tuple{SIGINT, 130, "SIGINT"}, std::tuple{SIGTERM, 143, "SIGTERM"},
                                        std::tuple{SIGHUP, 129, "SIGHUP"}}) {
    const std::string part = tmp(std::string("sig_part_") + name + ".jsonl");
    const std::string summary = tmp(std::string("sig_summary_") + name + ".json");
    const std::string err = tmp(std::string("sig_err_") + name);
    std::remove(part.c_str());
    const pid_t pid = spawn_flexgen(base() + args + "--output " + part + " --summary " + summary, err);
    ASSERT_GT(pid, 0);
    const bool started = wait_for_lines(part, 1, pid);
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(started) << name << ": the run ended before a record was out\n" << slurp(err);
    ASSERT_TRUE(WIFEXITED(status)) << name << ": killed by the signal instead of stopping";
    EXPECT_EQ(WEXITSTATUS(status), code) << name << "\n" << slurp(err);
    // Only whole records.
    const std::string text = slurp(part);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n') << name;
    std::istringstream in(text);
    size_t lines = 0;
    for (std::string l; std::getline(in, l); ++lines) EXPECT_NO_THROW(nlohmann::json::parse(l)) << l;
    EXPECT_LT(lines, 90u) << name;
    EXPECT_EQ(lines % 3, 0u) << name << ": a sample's per_prompt records are written together";
    // The summary says so, and one line says how to go on.
    const auto s = nlohmann::json::parse(slurp(summary));
    EXPECT_EQ(s["interrupted"], true) << name;
    const std::string e = slurp(err);
    EXPECT_NE(e.find(std::string("flexgen: interrupted by ") + name + " after " + std::to_string(lines / 3) +
                     " of 30 samples; rerun the same command with --resume to continue"),
              std::string::npos)
        << e;
    // --resume finishes it: the records of an uninterrupted run.
    const auto r = run_flexgen(base() + args + "--output " + part + " --resume", tmp("sig_resume"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(slurp(part), slurp(full)) << name;
  }
}

// A second signal while the first is being handled ends the process at once.
TEST_F(CliSafety, ASecondSignalEndsAtOnce) {
  const std::string args = "--max-samples 30 --method per_prompt --num-paraphrases 3 --max-new-tokens 16 --stop none ";
  const std::string part = tmp("sig2.jsonl"), err = tmp("sig2_err");
  std::remove(part.c_str());
  const pid_t pid = spawn_flexgen(base() + args + "--output " + part, err);
  ASSERT_GT(pid, 0);
  const bool started = wait_for_lines(part, 1, pid);
  // Stopped, both signals are pending together and handled one after the other on SIGCONT.
  kill(pid, SIGSTOP);
  kill(pid, SIGINT);
  kill(pid, SIGTERM);
  kill(pid, SIGCONT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(started) << slurp(err);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit " << WEXITSTATUS(status) << "\n" << slurp(err);
  EXPECT_TRUE(WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM) << WTERMSIG(status);
}

// Library errors reach the user in words: the file, what is wrong, no source paths of the
// library; logits that are not finite and all-zero weights name the sample (and the model).
TEST_F(CliSafety, LibraryErrorsAreTranslatedAndNameTheSample) {
  const std::string good = "{\"uuid\": \"a\", \"question\": \"q?\", \"answers\": [\"x\"], \"paraphrases\": [\"q?\", \"r?\"]}\n";
  const std::string dataset = tmp("lib.jsonl");
  write_file(dataset, good);
  const std::string args = "--few-shot 0 --num-paraphrases 2 --max-new-tokens 2 --dataset " + dataset + " ";

  // All-zero paraphrase weights.
  const std::string weights = tmp("zero_weights.jsonl");
  write_file(weights, "{\"uuid\": \"a\", \"weights\": [0, 0]}\n");
  const auto w = run_flexgen(base() + args + "--method weighted_avg --weights " + weights, tmp("lib_w"));
  EXPECT_EQ(w.exit_code, 1) << w.err;
  EXPECT_NE(w.err.find(dataset + ":1 (uuid a): the weights of paraphrases [0, 1] in " + weights + " are all zero"),
            std::string::npos)
      << w.err;

  // NaN weights in the model: logits that are not finite name the sample and the model.
  const std::string dir = flexgen::testing::write_tiny_model_dir(tmp("nan_model"));
  {
    std::string st = slurp(dir + "/model.safetensors");
    uint64_t n = 0;
    std::memcpy(&n, st.data(), 8);
    const auto header = nlohmann::json::parse(st.substr(8, n));
    const auto& off = header["model.norm.weight"]["data_offsets"];
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t at = 8 + n + off[0].get<size_t>(); at < 8 + n + off[1].get<size_t>(); at += 4)
      std::memcpy(&st[at], &nan, 4);
    write_file(dir + "/model.safetensors", st);
  }
  const auto r = run_flexgen("generate -q --model '" + dir + "' --dtype fp32 --threads 1 " + args, tmp("lib_nan"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dataset + ":1 (uuid a): the model's logits are not finite"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir + "/config.json"), std::string::npos) << r.err;

  // libtorch: a ZIP archive that is no TorchScript archive (no "version" record), and a file
  // that is no ZIP archive: the file and the problem, not libtorch's request to report it.
  const std::string zip = tmp("not_torchscript.pt");
  write_file(zip, stored_zip("archive/data.pkl", "garbage"));
  const std::string junk = tmp("junk.pt");
  write_file(junk, "junk");
  for (const auto& [archive, problem] : {std::pair{zip, std::string("no \"version\" record in it")},
                                        std::pair{junk, std::string("not a ZIP archive")}}) {
    const auto t = run_flexgen("generate -q --model " + archive + " --config " + *model_dir_ + "/config.json --tokenizer " +
                                   *model_dir_ + " --dtype fp32 --threads 1",
                               tmp("lib_ts"));
    EXPECT_EQ(t.exit_code, 1) << t.err;
    EXPECT_NE(t.err.find(archive + ": not a readable TorchScript archive: "), std::string::npos) << t.err;
    EXPECT_NE(t.err.find(problem), std::string::npos) << t.err;
    EXPECT_EQ(t.err.find("PyTorch"), std::string::npos) << t.err;
    EXPECT_EQ(t.err.find(".cpp"), std::string::npos) << t.err;
  }

  // SentencePiece: what is wrong with the file, not the library's source location.
  const std::string bad_model = tmp("bad.model");
  write_file(bad_model, "not a sentencepiece model");
  const auto s = run_flexgen("tokenize --tokenizer " + bad_model + " hello", tmp("lib_spm"));
  EXPECT_EQ(s.exit_code, 1) << s.err;
  EXPECT_NE(s.err.find(bad_model + ": not a usable SentencePiece model: the file does not parse"), std::string::npos)
      << s.err;
  EXPECT_EQ(s.err.find(".cc("), std::string::npos) << s.err;
}
