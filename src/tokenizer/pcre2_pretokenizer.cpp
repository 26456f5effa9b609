// Pre-tokenizer for any split regex of tokenizer.json, run by PCRE2 in UTF + UCP
// mode (Unicode properties for \s, \p{L}, ...), JIT-compiled when the platform allows.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

#include "pretokenizer.h"

namespace flexgen::tokenizer_detail {

namespace {

class Pcre2PreTokenizer final : public PreTokenizer {
 public:
  explicit Pcre2PreTokenizer(const std::string& pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                          &error, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(error, msg, sizeof msg);
      throw std::invalid_argument("regex error at offset " + std::to_string(offset) + ": " +
                                  reinterpret_cast<const char*>(msg));
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Pcre2PreTokenizer() override { pcre2_code_free(code_); }
  const char* name() const override { return jit_ ? "pcre2-jit" : "pcre2"; }

  // Matches and the text between them are pieces, in order (behaviour "Isolated").
  void split(std::string_view text, std::vector<std::string_view>& out) const override {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t at = 0, emitted = 0;
    // The text is already checked to be valid UTF-8.
    const uint32_t options = PCRE2_NO_UTF_CHECK;
    while (at <= text.size()) {
      const int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), at, options, md, nullptr)
                          : pcre2_match(code_, subject, text.size(), at, options, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t start = ov[0], end = ov[1];
      if (start > emitted) out.emplace_back(text.data() + emitted, start - emitted);
      if (end > start) {
        out.emplace_back(text.data() + start, end - start);
        emitted = end;
        at = end;
      } else {
        // Empty match: step over one code point.
        if (start >= text.size()) break;
        at = start + 1;
        while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
      }
    }
    if (emitted < text.size()) out.emplace_back(text.data() + emitted, text.size() - emitted);
    pcre2_match_data_free(md);
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pcre2_pretokenizer(const std::string& pattern) {
  return std::make_unique<Pcre2PreTokenizer>(pattern);
}

}  // namespace flexgen::tokenizer_detail
