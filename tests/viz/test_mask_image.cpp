#include <gtest/gtest.h>

#include "../test_tmp.h"
#include <png.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "flexgen/mask_image.h"

using namespace flexgen;

namespace {

struct Decoded {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

Decoded read_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) throw std::runtime_error("cannot read " + path);
  img.format = PNG_FORMAT_RGB;
  Decoded d;
  d.width = img.width;
  d.height = img.height;
  d.rgb.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, d.rgb.data(), 0, nullptr)) throw std::runtime_error("decode " + path);
  return d;
}

std::string temp_path(const std::string& name) { return flexgen::testing::tmp_path(name); }

}  // namespace

TEST(MaskImage, PngHasTheMatrixPixelsAndBoundaries) {
  const SequenceLayout l = layout_from_lengths({48, 47, 48, 49, 46}, false, 0, 0, 10);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  const std::string path = temp_path("mask.png");
  write_mask_image(path, l, m);
  const Decoded d = read_png(path);
  const MaskImageGeometry g = mask_image_geometry(l.length());
  EXPECT_EQ(g.cell, 3);  // 768 / 248
  EXPECT_EQ(d.width, g.side());
  EXPECT_EQ(d.height, g.side());
  auto px = [&](int64_t x, int64_t y) {
    const uint8_t* p = &d.rgb[static_cast<size_t>((y * d.width + x) * 3)];
    return std::vector<int>{p[0], p[1], p[2]};
  };
  auto centre = [&](int64_t q, int64_t k) { return px(g.origin(k) + 1, g.origin(q) + 1); };
  const std::vector<int> allowed = {31, 78, 121}, blocked = {240, 240, 240}, boundary = {214, 39, 40};
  EXPECT_EQ(centre(10, 5), allowed);    // inside segment 1
  EXPECT_EQ(centre(60, 10), blocked);   // segment 2 cannot see segment 1
  EXPECT_EQ(centre(5, 10), blocked);    // causal
  EXPECT_EQ(centre(240, 10), allowed);  // generated sees everything
  EXPECT_EQ(px(g.origin(48), g.origin(100) + 1), boundary);  // vertical line at segment 2's start
  // Some label pixels are drawn in the top margin.
  int dark = 0;
  for (int64_t y = 0; y < g.margin; ++y)
    for (int64_t x = g.margin; x < d.width; ++x) dark += px(x, y)[0] == 0;
  EXPECT_GT(dark, 20);
}

TEST(MaskImage, SvgHasSizeRowsAndLabels) {
  const SequenceLayout l = layout_from_lengths({4, 3}, true, 0, 1, 2);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  const std::string path = temp_path("mask.svg");
  write_mask_image(path, l, m);
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string svg = ss.str();
  const MaskImageGeometry g = mask_image_geometry(l.length());
  EXPECT_NE(svg.find("width=\"" + std::to_string(g.side()) + "\" height=\"" + std::to_string(g.side()) + "\""),
            std::string::npos);
  // One rect per run of allowed cells: count them against the mask.
  int64_t runs = 0;
  for (int64_t q = 0; q < l.length(); ++q)
    for (int64_t k = 0; k < l.length(); ++k) runs += m.allowed(q, k) && (k == 0 || !m.allowed(q, k - 1));
  const std::string allowed = svg.substr(svg.find("<g id=\"allowed\""), svg.find("</g>") - svg.find("<g id=\"allowed\""));
  std::regex rect("<rect ");
  EXPECT_EQ(std::distance(std::sregex_iterator(allowed.begin(), allowed.end(), rect), std::sregex_iterator()), runs);
  for (const char* label : {">B<", ">S1<", ">P1<", ">S2<", ">G0<"}) EXPECT_NE(svg.find(label), std::string::npos) << label;
}

TEST(MaskImage, RejectsUnknownExtensionAndHugeSequences) {
  const SequenceLayout l = layout_from_lengths({4}, false, 0, 0, 0);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  EXPECT_THROW(write_mask_image(temp_path("mask.jpg"), l, m), std::invalid_argument);
  const SequenceLayout big = layout_from_lengths({9000}, false, 0, 0, 0);
  EXPECT_THROW(write_mask_image(temp_path("big.png"), big, make_attention_mask(big, default_mask_spec(big))),
               std::invalid_argument);
  std::ifstream gone(temp_path("big.png"));
  EXPECT_FALSE(gone.good());
}
