// Reads tokenizer.json: model (BPE vocab + merges), added tokens, pre-tokenizer,
// decoder; and bos/eos/chat template from tokenizer_config.json. Anything this
// tokenizer would not reproduce exactly is rejected with the field named.
#include "tokenizer_json.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bpe_tokenizer.h"
#include "byte_level.h"

namespace flexgen::tokenizer_detail {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Token ids index per-id tables, so one huge id would allocate gigabytes: ids stay below 2^24
// (64 times the largest vocabularies in use, ~256K).
constexpr int64_t kMaxTokenId = int64_t{1} << 24;

// The GPT-2 split pattern that ByteLevel's use_regex applies.
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw TokenizerError(path_ + ": " + field + ": " + what);
  }

  json parse() const {
    std::ifstream f(path_, std::ios::binary);
    if (!f) throw TokenizerError(path_ + ": cannot open the file");
    std::stringstream ss;
    ss << f.rdbuf();
    try {
      return json::parse(ss.str());
    } catch (const json::exception& e) {  // parse errors, and numbers that do not fit a double
      // nlohmann's "[json.exception.parse_error.101] parse error at line 3, column 7: ..." as
      // "path:3: not valid JSON: ..."
      std::string m = e.what(), where = path_;
      if (const size_t b = m.find("] "); b != std::string::npos) m = m.substr(b + 2);
      if (const size_t at = m.find("at line "); at != std::string::npos) {
        const size_t comma = m.find(", ", at), colon = m.find(": ", at);
        if (comma != std::string::npos) where += ":" + m.substr(at + 8, comma - at - 8);
        if (colon != std::string::npos) m = m.substr(colon + 2);
      }
      throw TokenizerError(where + ": not valid JSON: " + m);
    }
  }

  const json& member(const json& obj, const char* key, const std::string& field) const {
    if (!obj.is_object()) fail(field, "expected an object");
    const auto it = obj.find(key);
    if (it == obj.end()) fail(field + "." + key, "missing");
    return *it;
  }

  std::string string_of(const json& j, const std::string& field) const {
    if (!j.is_string()) fail(field, "expected a string");
    return j.get<std::string>();
  }

  bool flag(const json& obj, const char* key, bool fallback, const std::string& field) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(field + "." + key, "expected true or false");
    return it->get<bool>();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool null_or_missing(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null();
}

void read_model(const Reader& r, const json& model, BpeParts& parts) {
  if (!model.is_object()) r.fail("model", "expected an object");
  if (model.contains("type") && r.string_of(model["type"], "model.type") != "BPE")
    r.fail("model.type", "'" + model["type"].get<std::string>() + "' is not supported (only BPE)");
  if (r.flag(model, "byte_fallback", false, "model")) r.fail("model.byte_fallback", "true is not supported");
  if (!null_or_missing(model, "dropout") && !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    r.fail("model.dropout", "BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!null_or_missing(model, key) && !(model[key].is_string() && model[key].get<std::string>().empty()))
      r.fail(std::string("model.") + key, "is not supported");
  }
  parts.model.set_ignore_merges(r.flag(model, "ignore_merges", false, "model"));

  const json& vocab = r.member(model, "vocab", "model");
  if (!vocab.is_object() || vocab.empty()) r.fail("model.vocab", "expected a non-empty object of token -> id");
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxTokenId)
      r.fail("model.vocab", "token '" + token + "' has no valid id (" + id.dump() + "; ids are 0 to " +
                                std::to_string(kMaxTokenId - 1) + ")");
    const auto bytes = byte_level_decode(token);
    if (!bytes) r.fail("model.vocab", "token '" + token + "' is not in the byte-level alphabet");
    if (!parts.model.add_token(*bytes, id.get<int32_t>()))
      r.fail("model.vocab", "token '" + token + "' appears twice (after byte-level decoding)");
  }
  const int missing = parts.model.missing_byte();
  if (missing >= 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%02X", missing);
    r.fail("model.vocab", std::string("no token for byte ") + hex + " (not a byte-level vocabulary)");
  }

  const json& merges = r.member(model, "merges", "model");
  if (!merges.is_array()) r.fail("model.merges", "expected an array");
  int32_t rank = 0;
  for (const json& m : merges) {
    const std::string field = "model.merges[" + std::to_string(rank) + "]";
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        r.fail(field, "'" + s + "' is not two tokens separated by one space");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      r.fail(field, "expected \"a b\" or [a, b]");
    }
    const auto lb = byte_level_decode(left), rb = byte_level_decode(right);
    if (!lb || !rb) r.fail(field, "a token is not in the byte-level alphabet");
    const int32_t l = parts.model.find(*lb), rr = parts.model.find(*rb), merged = parts.model.find(*lb + *rb);
    if (l < 0 || rr < 0 || merged < 0) r.fail(field, "'" + left + " " + right + "' uses a token not in model.vocab");
    parts.model.add_merge(l, rr, merged, rank);  // a repeated pair keeps its first (lowest) rank
    ++rank;
  }
}

void read_added_tokens(const Reader& r, const json& root, BpeParts& parts) {
  const auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return;
  if (!it->is_array()) r.fail("added_tokens", "expected an array");
  size_t i = 0;
  for (const json& t : *it) {
    const std::string field = "added_tokens[" + std::to_string(i++) + "]";
    const json& id = r.member(t, "id", field);
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxTokenId)
      r.fail(field + ".id", "expected an integer from 0 to " + std::to_string(kMaxTokenId - 1) + ", got " + id.dump());
    AddedToken a;
    a.id = id.get<int32_t>();
    a.content = r.string_of(r.member(t, "content", field), field + ".content");
    if (a.content.empty()) r.fail(field + ".content", "is empty");
    a.special = r.flag(t, "special", false, field);
    a.lstrip = r.flag(t, "lstrip", false, field);
    a.rstrip = r.flag(t, "rstrip", false, field);
    if (r.flag(t, "single_word", false, field)) r.fail(field + ".single_word", "true is not supported");
    parts.added.push_back(std::move(a));
  }
}

void read_byte_level(const Reader& r, const json& pt, const std::string& field, BpeParts& parts, bool alone) {
  parts.add_prefix_space = r.flag(pt, "add_prefix_space", false, field);
  const bool use_regex = r.flag(pt, "use_regex", true, field);
  if (alone) {
    if (use_regex) parts.pretokenizer = make_pretokenizer(kGpt2Pattern);
  } else if (use_regex) {
    r.fail(field + ".use_regex", "true after a Split is not supported");
  }
}

void read_split(const Reader& r, const json& pt, const std::string& field, BpeParts& parts, bool force_pcre2) {
  const json& pattern = r.member(pt, "pattern", field);
  std::string regex;
  if (pattern.is_object() && pattern.contains("Regex")) regex = r.string_of(pattern["Regex"], field + ".pattern.Regex");
  else r.fail(field + ".pattern", "only {\"Regex\": ...} patterns are supported");
  const auto behavior = pt.find("behavior");
  if (behavior != pt.end() && !(behavior->is_string() && behavior->get<std::string>() == "Isolated"))
    r.fail(field + ".behavior", "only \"Isolated\" is supported");
  if (r.flag(pt, "invert", false, field)) r.fail(field + ".invert", "true is not supported");
  try {
    parts.pretokenizer = force_pcre2 ? make_pcre2_pretokenizer(regex) : make_pretokenizer(regex);
  } catch (const std::invalid_argument& e) {
    r.fail(field + ".pattern.Regex", e.what());
  }
}

void read_pretokenizer(const Reader& r, const json& root, BpeParts& parts, bool force_pcre2) {
  if (!null_or_missing(root, "normalizer")) {
    const json& n = root["normalizer"];
    if (n.is_object() && n.value("type", "") == "NFC") {
      parts.nfc = true;  // Qwen2
    } else {
      r.fail("normalizer", "'" + (n.is_object() && n.contains("type") ? n["type"].dump() : n.dump()) +
                               "' is not supported (only null or NFC)");
    }
  }
  const json& pt = r.member(root, "pre_tokenizer", "tokenizer.json");
  if (!pt.is_object()) r.fail("pre_tokenizer", "expected an object");
  const std::string type = r.string_of(r.member(pt, "type", "pre_tokenizer"), "pre_tokenizer.type");
  if (type == "ByteLevel") {
    read_byte_level(r, pt, "pre_tokenizer", parts, true);
  } else if (type == "Sequence") {
    const json& list = r.member(pt, "pretokenizers", "pre_tokenizer");
    if (!list.is_array() || list.size() != 2)
      r.fail("pre_tokenizer.pretokenizers", "only [Split, ByteLevel] is supported");
    for (size_t i = 0; i < 2; ++i) {
      const std::string field = "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]";
      const std::string t = r.string_of(r.member(list[i], "type", field), field + ".type");
      if (i == 0 && t == "Split") read_split(r, list[i], field, parts, force_pcre2);
      else if (i == 1 && t == "ByteLevel") read_byte_level(r, list[i], field, parts, false);
      else r.fail(field + ".type", "'" + t + "' here is not supported (expected [Split, ByteLevel])");
    }
  } else {
    r.fail("pre_tokenizer.type", "'" + type + "' is not supported (expected ByteLevel or Sequence)");
  }
  if (!parts.pretokenizer) r.fail("pre_tokenizer", "no split pattern (ByteLevel with use_regex false alone)");
  if (!null_or_missing(root, "decoder")) {
    const json& d = root["decoder"];
    if (!d.is_object() || !d.contains("type") || d["type"] != "ByteLevel")
      r.fail("decoder", "only ByteLevel is supported");
  }
}

// bos_token / eos_token: "<|...|>" or {"content": "<|...|>", ...} or null.
std::optional<std::string> token_name(const Reader& r, const json& cfg, const char* key) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  r.fail(key, "expected a token name or {\"content\": ...}");
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path, const JsonLoadOptions& options) {
  Reader r(path);
  const json root = r.parse();
  if (!root.is_object()) r.fail("tokenizer.json", "expected a JSON object at the top");
  BpeParts parts;
  parts.source = path;
  read_model(r, r.member(root, "model", "tokenizer.json"), parts);
  parts.model.set_cache(options.word_cache);
  read_added_tokens(r, root, parts);
  read_pretokenizer(r, root, parts, options.force_pcre2);
  auto tok = std::make_unique<BpeTokenizer>(std::move(parts));

  // BOS from the post-processor template when there is no tokenizer_config.json.
  std::optional<int32_t> bos, eos;
  if (root.contains("post_processor") && root["post_processor"].is_object()) {
    // A processor's "type" ("" when it has none); a malformed one is refused with its field.
    auto type_of = [&](const json& p, const std::string& field) {
      if (!p.is_object()) r.fail(field, "expected an object");
      return p.contains("type") ? r.string_of(p["type"], field + ".type") : std::string();
    };
    const json& pp = root["post_processor"];
    std::vector<json> procs{pp};
    if (type_of(pp, "post_processor") == "Sequence" && pp.contains("processors")) {
      if (!pp["processors"].is_array()) r.fail("post_processor.processors", "expected an array");
      procs = pp["processors"].get<std::vector<json>>();
    }
    for (const json& p : procs) {
      if (type_of(p, "post_processor") != "TemplateProcessing" || !p.contains("single") || !p["single"].is_array())
        continue;
      const json& single = p["single"];
      if (!single.empty() && single[0].contains("SpecialToken") && single[0]["SpecialToken"].contains("id"))
        bos = tok->token_id(r.string_of(single[0]["SpecialToken"]["id"], "post_processor.single[0].SpecialToken.id"));
    }
  }
  std::string chat_template;
  const fs::path config_path = fs::path(path).parent_path() / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    Reader c(config_path.string());
    const json cfg = c.parse();
    if (!cfg.is_object()) c.fail("tokenizer_config.json", "expected a JSON object at the top");
    for (const char* key : {"bos_token", "eos_token"}) {
      const auto name = token_name(c, cfg, key);
      if (!name) continue;
      const auto id = tok->token_id(*name);
      if (!id) c.fail(key, "'" + *name + "' is not a token of " + path);
      (std::string(key) == "bos_token" ? bos : eos) = id;
    }
    if (cfg.contains("chat_template") && !cfg["chat_template"].is_null()) {
      const json& t = cfg["chat_template"];
      if (t.is_string()) {
        chat_template = t.get<std::string>();
      } else if (t.is_array()) {
        for (const json& e : t)
          if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
            chat_template = e["template"].get<std::string>();
      } else {
        c.fail("chat_template", "expected a string or a list of {name, template}");
      }
    }
  }
  auto* bpe = static_cast<BpeTokenizer*>(tok.get());
  bpe->set_specials(bos, eos, std::move(chat_template));
  spdlog::debug("{}: {} ids, pre-tokenizer {}", path, tok->vocab_size(), bpe->pretokenizer_name());
  return tok;
}

}  // namespace flexgen::tokenizer_detail
