// What bench_decode_cuda and bench_linear_cuda share on their command line and first error line.
#pragma once

#include <cstdint>
#include <string>

namespace bench_decode {

// `text` as a whole number >= 1 for `flag`; std::invalid_argument naming the flag otherwise.
int64_t parse_count(const std::string& flag, const std::string& text);

// Why there is no CUDA device (a CPU build, or no GPU visible), for the one error line.
std::string no_cuda_reason();

}  // namespace bench_decode
