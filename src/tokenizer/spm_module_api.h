// C ABI of the flexgen_spm module (libflexgen_spm.so), which wraps libsentencepiece.
// The module is loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) so that its protobuf
// never meets libtorch's copy in the same symbol namespace.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {

typedef struct flexgen_spm flexgen_spm;

#define FLEXGEN_SPM_ABI_VERSION 1

// ABI version of the module (FLEXGEN_SPM_ABI_VERSION).
int flexgen_spm_abi_version(void);
// Loads a .model file; on failure returns NULL and writes a message to err.
flexgen_spm* flexgen_spm_load(const char* path, char* err, size_t err_size);
void flexgen_spm_free(flexgen_spm* h);
// Frees a buffer returned by encode/decode.
void flexgen_spm_release(void* buffer);
int32_t flexgen_spm_vocab_size(const flexgen_spm* h);
// -1 when the model has none.
int32_t flexgen_spm_bos_id(const flexgen_spm* h);
int32_t flexgen_spm_eos_id(const flexgen_spm* h);
int32_t flexgen_spm_unk_id(const flexgen_spm* h);
// 0 on success: *ids (release it) holds *n ids. Otherwise writes a message to err.
int flexgen_spm_encode(const flexgen_spm* h, const char* text, size_t len, int32_t** ids, size_t* n, char* err,
                       size_t err_size);
// 0 on success: *text (release it) holds *len bytes.
int flexgen_spm_decode(const flexgen_spm* h, const int32_t* ids, size_t n, char** text, size_t* len, char* err,
                       size_t err_size);
// The piece of `id` (NUL-terminated, valid while the handle lives); NULL when out of range.
const char* flexgen_spm_piece(const flexgen_spm* h, int32_t id);
// Id of `piece`, or -1 when it is not in the vocabulary.
int32_t flexgen_spm_piece_to_id(const flexgen_spm* h, const char* piece, size_t len);
// 1 for control tokens (<s>, </s>), 0 otherwise.
int flexgen_spm_is_control(const flexgen_spm* h, int32_t id);
// 1 for byte pieces (<0x41>), 0 otherwise.
int flexgen_spm_is_byte(const flexgen_spm* h, int32_t id);
// 1 for the unknown piece.
int flexgen_spm_is_unknown(const flexgen_spm* h, int32_t id);
// 1 when the model adds a dummy "▁" prefix to the text.
int flexgen_spm_add_dummy_prefix(const flexgen_spm* h);
}
