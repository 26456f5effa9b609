// The safetensors header parser (what SafetensorsFile::open runs on the mapped file).
// Input: 8 bytes (little-endian) giving the size of the data section after the header (so that
// the seeds, made from the tests' tiny models, need not carry the tensor bytes), then the file's
// head: the header length and the JSON header.
//   Any input gives a header or a ModelError naming the file (never another exception, never a
//   crash); an accepted header's tensors have a known dtype, offsets that match dtype x shape and
//   tile the data section exactly.
#include <algorithm>
#include <cstring>
#include <string>

#include "flexgen/safetensors_header.h"
#include "fuzz_target.h"

FLEXGEN_FUZZ_TARGET(safetensors_header) {
  using namespace flexgen;
  if (size < 8) return 0;
  uint64_t data_bytes = 0;
  std::memcpy(&data_bytes, data, 8);
  data_bytes %= uint64_t{1} << 40;
  const uint8_t* head = data + 8;
  const size_t head_size = size - 8;
  const std::string name = "fuzz.safetensors";
  uint64_t header_bytes = 0;
  if (head_size >= 8) std::memcpy(&header_bytes, head, 8);
  // The file: the head up to the end of the header, then the data section.
  const uint64_t file_size = head_size >= 8 && header_bytes <= head_size - 8 ? 8 + header_bytes + data_bytes
                                                                              : head_size + data_bytes;
  SafetensorsHeader h;
  if (!EXPECT_ONLY(ModelError, name, { h = parse_safetensors_header(head, head_size, file_size, name); })) return 0;
  FUZZ_CHECK(h.data_start == 8 + header_bytes, "data_start is not 8 + the header length");
  FUZZ_CHECK(h.data_start <= file_size, "data_start lies past the end of the file");
  std::vector<const SafetensorInfo*> order;
  for (const auto& t : h.tensors) {
    const size_t esize = safetensors_dtype_size(t.dtype);
    FUZZ_CHECK(esize > 0, "tensor '" + t.name + "' has an unknown dtype " + t.dtype);
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0, "tensor '" + t.name + "' has a negative dimension");
      numel *= static_cast<uint64_t>(d);
    }
    FUZZ_CHECK(t.begin <= t.end && t.end - t.begin == numel * esize, "tensor '" + t.name + "' offsets do not match its shape");
    FUZZ_CHECK(t.name != "__metadata__", "__metadata__ read as a tensor");
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  uint64_t pos = 0;
  for (const auto* t : order) {
    FUZZ_CHECK(t->begin == pos, "tensors do not tile the data section at '" + t->name + "'");
    pos = t->end;
  }
  FUZZ_CHECK(pos == file_size - h.data_start, "tensors do not cover the data section");
  return 0;
}
