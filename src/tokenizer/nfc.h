// Unicode NFC normalization (the "NFC" normalizer of tokenizer.json, e.g. Qwen2's): canonical
// decomposition, canonical ordering, canonical composition, as Hugging Face tokenizers does.
#pragma once

#include <string>
#include <string_view>

namespace flexgen::tokenizer_detail {

// NFC of valid UTF-8 `text`. Text that NFC cannot change (every code point below U+0300, the
// common case) is returned as is without any table look-up.
std::string nfc(std::string_view text);

// Whether nfc(text) == text is known without normalizing (the fast path above).
bool nfc_quick_yes(std::string_view text);

}  // namespace flexgen::tokenizer_detail
