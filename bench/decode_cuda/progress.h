// bench_decode_cuda's progress lines: stderr only (stdout holds nothing but the JSON document).
#pragma once

#include <iostream>
#include <string>

namespace bench_decode {

inline void progress(const std::string& msg) { std::cerr << "bench_decode_cuda: " << msg << std::endl; }

}  // namespace bench_decode
