// config.json (transformers 4.x and 5.x styles) and generation_config.json.
// Input: config.json, optionally followed by a NUL byte and a generation_config.json.
//   Any input gives a config or a ModelError naming the file (never another exception, never a
//   crash); an accepted config passes validate(), its sizes are positive and fit together, and
//   q_dim() / kv_dim() fit in int64.
#include <string>

#include "flexgen/model_config.h"
#include "fuzz_target.h"

namespace {

bool mul_fits(int64_t a, int64_t b) {
  int64_t out;
  return !__builtin_mul_overflow(a, b, &out);
}

}  // namespace

FLEXGEN_FUZZ_TARGET(model_config) {
  using namespace flexgen;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string config_text = input.substr(0, nul);
  const std::string source = "fuzz/config.json";
  ModelConfig c;
  if (!EXPECT_ONLY(ModelError, source, { c = parse_model_config(config_text, source); })) return 0;
  FUZZ_CHECK(c.source == source, "the config does not name its file");
  FUZZ_CHECK(EXPECT_ONLY(ModelError, source, { c.validate(); }), "parse_model_config returned a config validate() rejects");
  FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_layers > 0 && c.num_heads > 0 &&
                 c.num_kv_heads > 0 && c.head_dim > 0,
             "a size is not positive");
  FUZZ_CHECK(c.num_heads % c.num_kv_heads == 0 && c.head_dim % 2 == 0, "heads or head_dim do not fit together");
  FUZZ_CHECK(mul_fits(c.num_heads, c.head_dim) && mul_fits(c.num_kv_heads, c.head_dim),
             "q_dim/kv_dim overflow int64: heads " + std::to_string(c.num_heads) + ", kv heads " +
                 std::to_string(c.num_kv_heads) + ", head_dim " + std::to_string(c.head_dim));
  (void)c.q_dim();
  (void)c.kv_dim();
  if (nul != std::string::npos) {
    const std::string gen_path = write_scratch("generation_config.json", input.substr(nul + 1));
    EXPECT_ONLY(ModelError, gen_path, { apply_generation_config(gen_path, c); });
  }
  return 0;
}
