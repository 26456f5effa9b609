// RoPE tables on the CPU (rope_cpu.h).
#include "cpu/rope_cpu.h"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

namespace flexgen {
namespace {

// fdlibm __kernel_sin / __kernel_cos on [-pi/4, pi/4].
double kernel_sin(double x) {
  const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03, S3 = -1.98412698298579493134e-04,
               S4 = 2.75573137070700676789e-06, S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
  const double z = x * x, v = z * x;
  const double r = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
  return x + v * (S1 + z * r);
}

double kernel_cos(double x) {
  const double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03, C3 = 2.48015872894767294178e-05,
               C4 = -2.75573143513906633035e-07, C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
  const double z = x * x;
  const double r = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
  const double hz = 0.5 * z, w = 1.0 - hz;
  return w + (((1.0 - w) - hz) + z * r);
}

}  // namespace

void rope_sincos(double x, double& s, double& c) {
  // x = n * pi/2 + r, |r| <= pi/4: pi/2 in three parts (33 + 33 + 53 bits), n * part1 exact.
  const double pio2_1 = 1.57079632673412561417e+00, pio2_2 = 6.07710050630396597660e-11,
               pio2_3 = 2.02226624871116645580e-21, inv_pio2 = 6.36619772367581382433e-01;
  if (!(std::fabs(x) < 823549.6)) throw std::invalid_argument("rope_sincos: angle out of range");
  const double n = std::nearbyint(x * inv_pio2);
  const double r = ((x - n * pio2_1) - n * pio2_2) - n * pio2_3;
  const double sr = kernel_sin(r), cr = kernel_cos(r);
  switch (static_cast<int64_t>(n) & 3) {
    case 0: s = sr; c = cr; break;
    case 1: s = cr; c = -sr; break;
    case 2: s = -sr; c = -cr; break;
    default: s = -cr; c = sr; break;
  }
}

std::pair<at::Tensor, at::Tensor> rope_tables_cpu(const at::Tensor& positions_in, const at::Tensor& inv_freq_in,
                                                  at::ScalarType dtype) {
  if (positions_in.dim() != 2 || inv_freq_in.dim() != 1)
    throw std::invalid_argument("rope_tables_cpu: positions [B, L] and inv_freq [D/2] expected");
  const at::Tensor positions = positions_in.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor inv_freq = inv_freq_in.to(at::kCPU, at::kFloat).contiguous();
  const int64_t B = positions.size(0), L = positions.size(1), half = inv_freq.size(0), D = 2 * half;
  at::Tensor cos = at::empty({B, 1, L, D}, at::kFloat), sin = at::empty({B, 1, L, D}, at::kFloat);
  const int64_t* pos = positions.data_ptr<int64_t>();
  const float* inv = inv_freq.data_ptr<float>();
  float* cp = cos.data_ptr<float>();
  float* sp = sin.data_ptr<float>();
  for (int64_t t = 0; t < B * L; ++t) {
    const float p = static_cast<float>(pos[t]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = p * inv[i];
      double s, c;
      rope_sincos(static_cast<double>(angle), s, c);
      cp[t * D + i] = cp[t * D + half + i] = static_cast<float>(c);
      sp[t * D + i] = sp[t * D + half + i] = static_cast<float>(s);
    }
  }
  return {cos.to(dtype), sin.to(dtype)};
}

}  // namespace flexgen
