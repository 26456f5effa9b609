// Block-sparse attention kernel vs dense masked attention (libtorch ops: matmul + mask +
// softmax + matmul) vs dense causal attention (at::_scaled_dot_product_attention, is_causal),
// side by side in one run; prints JSON on stdout.
//
// Sequence: BOS + 5 isolated paraphrase segments (and a variant with a shared context of 20%
// of L visible to every segment), 24 query heads / 8 KV heads, head_dim 128, batch 1,
// 2 threads. Prefill (Lq = L) and one decode step (Lq = 1 at position L, a generated token).
//
// Options: --lengths 1024,4096,16384  --dtypes bf16,fp32  --block 128  --tile 0  --reps 5
//          --no-dense  --no-decode  --no-prefill  --threads 2  --dense-max 4096
#include <ATen/ATen.h>
#include <torch/version.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "flexgen/block_mask.h"
#include "cpu/block_sparse_attention.h"
#include "flexgen/layout.h"
#include "flexgen/mask.h"
#include "flexgen/runtime_info.h"

namespace {

// Dense causal attention through libtorch's fused op: `_scaled_dot_product_attention`
// in libtorch 1.13, `scaled_dot_product_attention` from 2.0 on.
at::Tensor dense_causal_sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, {}, 0.0, false, /*is_causal=*/true));
#endif
}


using Clock = std::chrono::steady_clock;

// BOS + (20% shared context)? + 5 segments, + `generated` positions; total prompt length `total`.
flexgen::SequenceLayout five_segments(int64_t total, bool with_context, int64_t generated) {
  const int64_t ctx = with_context ? total / 5 : 0;
  const int64_t rest = total - 1 - ctx;
  std::vector<int64_t> lengths(5, rest / 5);
  lengths.back() += rest - 5 * (rest / 5);
  return flexgen::layout_from_lengths(lengths, /*bos=*/true, ctx, /*separator_tokens=*/0, generated);
}

// Median wall time in milliseconds of `fn` over `reps` runs after one warm-up.
template <class Fn>
double median_ms(Fn&& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto a = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Median wall time and median process CPU time (all threads; less sensitive than wall time to
// other jobs on a shared machine) in milliseconds of `fn` over `reps` runs after one warm-up.
struct Timing {
  double wall_ms, cpu_ms;
};
template <class Fn>
Timing measure(Fn&& fn, int reps) {
  fn();
  std::vector<double> w, c;
  for (int i = 0; i < reps; ++i) {
    timespec a{}, b{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    const auto t0 = Clock::now();
    fn();
    w.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    c.push_back((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6);
  }
  std::sort(w.begin(), w.end());
  std::sort(c.begin(), c.end());
  return {w[w.size() / 2], c[c.size() / 2]};
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Materialised allowed matrix [Lq, Lk] for query rows q_offset.. and keys 0..
at::Tensor dense_allowed(const flexgen::AttentionMask& mask, int64_t q_offset, int64_t lq, int64_t lk) {
  // Built from group ids with tensor ops (not L*L predicate calls).
  const int64_t G = mask.spec.num_groups;
  at::Tensor gid = at::from_blob(const_cast<int32_t*>(mask.group_ids.data()), {mask.length()}, at::kInt).to(at::kLong);
  at::Tensor vis = at::from_blob(const_cast<uint8_t*>(mask.spec.visible.data()), {G, G}, at::kByte).to(at::kBool);
  at::Tensor gq = gid.slice(0, q_offset, q_offset + lq), gk = gid.slice(0, 0, lk);
  at::Tensor allowed = vis.index({gq}).index_select(1, gk);
  if (mask.spec.causal) {
    at::Tensor qi = at::arange(q_offset, q_offset + lq, at::kLong).unsqueeze(1);
    at::Tensor ki = at::arange(0, lk, at::kLong).unsqueeze(0);
    allowed = allowed.logical_and(ki <= qi);
  }
  return allowed;
}

// Dense masked attention with libtorch ops. GQA without copies: the g query heads of a KV
// head are viewed as one [g*Lq, d] matrix against that head's K/V.
at::Tensor dense_masked(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& allowed, double scale) {
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), d = q.size(3), Hkv = k.size(1), g = H / Hkv;
  at::Tensor qg = q.reshape({B, Hkv, g * Lq, d});
  at::Tensor s = at::matmul(qg, k.transpose(-2, -1)).mul_(scale).view({B, Hkv, g, Lq, -1});
  s.masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  at::Tensor p = at::softmax(s, -1).view({B, Hkv, g * Lq, -1});
  return at::matmul(p, v).view({B, H, Lq, d});
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> lengths = {1024, 4096, 16384};
  std::vector<std::string> dtypes = {"bf16", "fp32"};
  int64_t block = 128, tile = 0, dense_max = 4096;
  int reps = 5, threads = 2;
  bool dense = true, decode = true, prefill = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--lengths") {
      lengths.clear();
      for (auto& s : split(next())) lengths.push_back(std::stoll(s));
    } else if (a == "--dtypes") {
      dtypes = split(next());
    } else if (a == "--block") {
      block = std::stoll(next());
    } else if (a == "--tile") {
      tile = std::stoll(next());
    } else if (a == "--reps") {
      reps = std::stoi(next());
    } else if (a == "--threads") {
      threads = std::stoi(next());
    } else if (a == "--dense-max") {
      dense_max = std::stoll(next());
    } else if (a == "--no-dense") {
      dense = false;
    } else if (a == "--no-prefill") {
      prefill = false;
    } else if (a == "--no-decode") {
      decode = false;
    } else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  at::set_num_threads(threads);
  at::manual_seed(0);
  const int64_t H = 24, Hkv = 8, d = 128;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const std::string load_before = load_average();

  nlohmann::json results = nlohmann::json::array();
  for (const std::string& dt_name : dtypes) {
    const at::ScalarType dt = dt_name == "bf16" ? at::kBFloat16 : at::kFloat;
    for (int64_t L : lengths) {
      at::Tensor q = at::randn({1, H, L, d}).to(dt), k = at::randn({1, Hkv, L, d}).to(dt),
                 v = at::randn({1, Hkv, L, d}).to(dt);
      const int kreps = L >= 16384 ? std::max(1, reps / 3) : reps;
      const bool run_dense = dense && L <= dense_max;
      const bool run_causal = run_dense && prefill;
      // Dense causal: at::_scaled_dot_product_attention needs equal head counts, so K/V are
      // expanded once, outside the timing (its best case).
      double causal_ms = -1, causal_cpu_ms = -1;
      if (run_causal) {
        at::Tensor ke = k.repeat_interleave(H / Hkv, 1), ve = v.repeat_interleave(H / Hkv, 1);
        const Timing ct = measure([&] { dense_causal_sdpa(q, ke, ve); },
                                  std::max(1, reps / 2));
        causal_ms = ct.wall_ms;
        causal_cpu_ms = ct.cpu_ms;
      }
      const double causal_pairs = static_cast<double>(L) * (L + 1) / 2;
      flexgen::BlockSparseAttentionOptions opt;
      opt.q_tile = tile;
      for (bool ctx : {false, true}) {
        if (prefill) {
        const flexgen::SequenceLayout layout = five_segments(L, ctx, 0);
        const flexgen::MaskSpec spec = flexgen::default_mask_spec(layout);
        const flexgen::AttentionMask mask = flexgen::make_attention_mask(layout, spec);
        const flexgen::BlockMask bm = flexgen::build_block_mask(layout, spec, block);
        const flexgen::BlockMaskStats st = flexgen::block_mask_stats(bm);
        const std::vector<flexgen::SparseMaskRef> refs{flexgen::SparseMaskRef{&bm, &mask, 0, 0}};
        at::Tensor out;
        const Timing kt = measure([&] { out = flexgen::block_sparse_attention(q, k, v, refs, opt).out; }, kreps);
        const double kernel_ms = kt.wall_ms, kernel_cpu_ms = kt.cpu_ms;
        const double allowed = static_cast<double>(bm.allowed_pairs);
        const double kernel_gflops = 4.0 * d * H * allowed / (kernel_ms * 1e6);
        nlohmann::json row = {{"mode", "prefill"},
                              {"dtype", dt_name},
                              {"length", L},
                              {"shared_context", ctx},
                              {"block_size", block},
                              {"allowed_pairs", bm.allowed_pairs},
                              {"fraction_of_causal", st.causal_fraction()},
                              {"full_blocks", st.full},
                              {"partial_blocks", st.partial},
                              {"kernel_ms", kernel_ms},
                              {"kernel_cpu_ms_all_threads", kernel_cpu_ms},
                              {"kernel_gflops_allowed", kernel_gflops},
                              {"kernel_gflops_allowed_per_cpu_second_x_threads",
                               4.0 * d * H * allowed / (kernel_cpu_ms / at::get_num_threads() * 1e6)}};
        if (run_dense) {
          const at::Tensor allowed_t = dense_allowed(mask, 0, L, L);
          at::Tensor ref;
          const Timing mt = measure([&] { ref = dense_masked(q, k, v, allowed_t, scale); }, std::max(1, reps / 2));
          const double masked_ms = mt.wall_ms;
          row["dense_masked_cpu_ms_all_threads"] = mt.cpu_ms;
          row["dense_causal_cpu_ms_all_threads"] = causal_cpu_ms;
          row["speedup_vs_dense_masked_cpu_time"] = mt.cpu_ms / kernel_cpu_ms;
          const double max_err = (ref.to(at::kFloat) - out.to(at::kFloat)).abs().max().item<double>();
          row["dense_masked_ms"] = masked_ms;
          row["dense_causal_ms"] = causal_ms;
          row["speedup_vs_dense_masked"] = masked_ms / kernel_ms;
          row["speedup_vs_dense_causal"] = causal_ms / kernel_ms;
          row["dense_masked_gflops_all_pairs"] = 4.0 * d * H * L * L / (masked_ms * 1e6);
          const double causal_gflops = 4.0 * d * H * causal_pairs / (causal_ms * 1e6);
          row["dense_causal_gflops_causal_pairs"] = causal_gflops;
          row["dense_causal_gflops_all_pairs"] = 4.0 * d * H * L * L / (causal_ms * 1e6);
          row["kernel_over_causal_gflops"] = kernel_gflops / causal_gflops;
          row["max_abs_diff_vs_dense_masked"] = max_err;
        } else {
          row["dense"] = dense ? "skipped: L > " + std::to_string(dense_max) +
                                     " (fp32 scores of 24 heads need 24*L*L*4 bytes: " +
                                     std::to_string(24.0 * L * L * 4 / (1 << 30)) + " GiB)"
                               : "disabled (--no-dense)";
        }
        results.push_back(row);
        }

        if (decode) {
          // One decode step: a generated token at position L attends to everything.
          const flexgen::SequenceLayout dl = five_segments(L, ctx, 1);
          const flexgen::MaskSpec dspec = flexgen::default_mask_spec(dl);
          const flexgen::AttentionMask dmask = flexgen::make_attention_mask(dl, dspec);
          const flexgen::BlockMask dbm = flexgen::build_block_mask(dl, dspec, block);
          at::Tensor qd = at::randn({1, H, 1, d}).to(dt);
          at::Tensor kd = at::cat({k, at::randn({1, Hkv, 1, d}).to(dt)}, 2);
          at::Tensor vd = at::cat({v, at::randn({1, Hkv, 1, d}).to(dt)}, 2);
          const std::vector<flexgen::SparseMaskRef> drefs{flexgen::SparseMaskRef{&dbm, &dmask, L, 0}};
          at::Tensor dout;
          const Timing dt_k = measure([&] { dout = flexgen::block_sparse_attention(qd, kd, vd, drefs, opt).out; }, 20);
          const double dec_ms = dt_k.wall_ms;
          const double bytes = 2.0 * Hkv * (L + 1) * d * (dt == at::kBFloat16 ? 2 : 4);
          nlohmann::json drow = {{"mode", "decode"},       {"dtype", dt_name},
                                 {"length", L + 1},        {"shared_context", ctx},
                                 {"kernel_ms", dec_ms},    {"kv_gbytes_per_s", bytes / (dec_ms * 1e6)},
                                 {"kernel_cpu_ms_all_threads", dt_k.cpu_ms}};
          if (run_dense) {
            const at::Tensor allowed_t = dense_allowed(dmask, L, 1, L + 1);
            at::Tensor ref;
            const Timing dt_d = measure([&] { ref = dense_masked(qd, kd, vd, allowed_t, scale); }, 20);
            const double dense_ms = dt_d.wall_ms;
            drow["dense_masked_cpu_ms_all_threads"] = dt_d.cpu_ms;
            drow["speedup_vs_dense_masked_cpu_time"] = dt_d.cpu_ms / dt_k.cpu_ms;
            drow["dense_masked_ms"] = dense_ms;
            drow["speedup_vs_dense_masked"] = dense_ms / dec_ms;
            drow["max_abs_diff_vs_dense_masked"] =
                (ref.to(at::kFloat) - dout.to(at::kFloat)).abs().max().item<double>();
          }
          results.push_back(drow);
        }
      }
    }
  }
  nlohmann::json out = {
      {"benchmark", "block_sparse_attention"},
      {"heads", H},
      {"kv_heads", Hkv},
      {"head_dim", d},
      {"batch", 1},
      {"segments", 5},
      {"threads", at::get_num_threads()},
      {"blas_library", flexgen::blas_library()},
      {"kernel_backend", flexgen::block_sparse_attention_backend()},
      {"blas_library_note", "the dense paths use this BLAS; the kernel does not call BLAS"},
      {"torch_version", flexgen::torch_version()},
      {"load_average_before", load_before},
      {"load_average_after", load_average()},
      {"flops", "4*head_dim per (query, key) pair per head; kernel and dense_causal_gflops_causal_pairs "
                "count only allowed (resp. causal) pairs, *_all_pairs count L*L"},
      {"dense_masked", "libtorch matmul + masked_fill + softmax + matmul, GQA by viewing the g query heads as "
                       "one matrix (no K/V copies), same dtype as the inputs"},
      {"dense_causal", "at::_scaled_dot_product_attention(is_causal=true), K/V expanded to 24 heads outside "
                       "the timing"},
      {"results", results}};
  std::cout << out.dump(2) << std::endl;
  return 0;
}
