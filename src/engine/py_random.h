// Python-compatible seeded sampling (internal header): the same choices as CPython's
// `random.seed(seed); random.sample(range(n), k)`, so few-shot draws match the reference's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flexgen {

// MT19937 (32-bit) seeded like CPython's random.seed(int): init_by_array over the
// 32-bit words of the seed. Fully specified, identical on every platform.
class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);
  uint32_t next_u32();
  // CPython's getrandbits(k) for 0 <= k <= 32.
  uint32_t bits(int k);
  // CPython's _randbelow(n): uniform in [0, n) by rejection on bit_length(n) bits.
  uint64_t below(uint64_t n);

 private:
  std::array<uint32_t, 624> mt_{};
  size_t index_ = 624;
};

// CPython's random.sample(range(n), k) after random.seed(seed): k distinct indexes in
// draw order. Throws std::invalid_argument when k > n or n >= 2^32.
std::vector<size_t> py_sample(size_t n, size_t k, uint64_t seed);

}  // namespace flexgen
