// CPython's Mersenne Twister seeding and random.sample (Lib/random.py, Modules/_randommodule.c).
#include "py_random.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_set>

namespace flexgen {

PyRandom::PyRandom(uint64_t seed) {
  // init_genrand(19650218) then init_by_array(key), key = 32-bit words of the seed (at least one).
  std::vector<uint32_t> key;
  for (uint64_t s = seed; s; s >>= 32) key.push_back(static_cast<uint32_t>(s));
  if (key.empty()) key.push_back(0);
  const size_t n = mt_.size();
  mt_[0] = 19650218u;
  for (size_t i = 1; i < n; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  size_t i = 1, j = 0;
  for (size_t k = std::max(n, key.size()); k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    ++i, ++j;
    if (i >= n) mt_[0] = mt_[n - 1], i = 1;
    if (j >= key.size()) j = 0;
  }
  for (size_t k = n - 1; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= n) mt_[0] = mt_[n - 1], i = 1;
  }
  mt_[0] = 0x80000000u;
  index_ = n;
}

uint32_t PyRandom::next_u32() {
  constexpr size_t n = 624, m = 397;
  if (index_ >= n) {
    for (size_t k = 0; k < n; ++k) {
      const uint32_t y = (mt_[k] & 0x80000000u) | (mt_[(k + 1) % n] & 0x7fffffffu);
      mt_[k] = mt_[(k + m) % n] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    index_ = 0;
  }
  uint32_t y = mt_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint32_t PyRandom::bits(int k) { return k <= 0 ? 0 : next_u32() >> (32 - k); }

uint64_t PyRandom::below(uint64_t n) {
  int k = 0;
  while (k < 64 && (n >> k)) ++k;  // n.bit_length()
  if (k > 32) throw std::invalid_argument("PyRandom::below: n must be below 2^32");
  uint64_t r = bits(k);
  while (r >= n) r = bits(k);
  return r;
}

std::vector<size_t> py_sample(size_t n, size_t k, uint64_t seed) {
  if (k > n)
    throw std::invalid_argument("cannot draw " + std::to_string(k) + " distinct items from " + std::to_string(n));
  if (n >= (size_t(1) << 32)) throw std::invalid_argument("population too large");
  PyRandom rng(seed);
  std::vector<size_t> out(k);
  size_t setsize = 21;
  if (k > 5) setsize += static_cast<size_t>(std::pow(4.0, std::ceil(std::log(double(k * 3)) / std::log(4.0))));
  if (n <= setsize) {
    std::vector<size_t> pool(n);
    for (size_t i = 0; i < n; ++i) pool[i] = i;
    for (size_t i = 0; i < k; ++i) {
      const size_t j = rng.below(n - i);
      out[i] = pool[j];
      pool[j] = pool[n - i - 1];
    }
  } else {
    std::unordered_set<size_t> selected;
    for (size_t i = 0; i < k; ++i) {
      size_t j = rng.below(n);
      while (selected.count(j)) j = rng.below(n);
      selected.insert(j);
      out[i] = j;
    }
  }
  return out;
}

}  // namespace flexgen
