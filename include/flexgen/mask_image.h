// Pictures of a full attention mask (one cell per position pair) with segment
// boundaries and labels: SVG (plain text) and PNG (through libpng).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flexgen/layout.h"
#include "flexgen/mask.h"

namespace flexgen {

constexpr int64_t kMaxImagePositions = 8192;

// 8-bit RGB pixels, row-major.
struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;
  const uint8_t* at(int64_t x, int64_t y) const { return &pixels[static_cast<size_t>((y * width + x) * 3)]; }
};

// Placement of the matrix inside a picture: cell size and margins, in pixels.
struct MaskImageGeometry {
  int64_t cell = 1;
  int64_t margin = 40;  // left and top, for labels
  int64_t pad = 8;      // right and bottom
  int64_t length = 0;
  int64_t side() const { return margin + length * cell + pad; }
  int64_t origin(int64_t position) const { return margin + position * cell; }
};

MaskImageGeometry mask_image_geometry(int64_t length);
RgbImage render_mask_raster(const SequenceLayout& layout, const AttentionMask& mask);
std::string render_mask_svg(const SequenceLayout& layout, const AttentionMask& mask);
// Writes an RGB image as PNG; throws std::runtime_error naming the file on failure.
void write_png(const std::string& path, const RgbImage& image);
// Picks the format from the extension (.svg or .png), writes atomically
// (temporary file, then rename); throws std::invalid_argument for an unknown
// extension or a sequence longer than kMaxImagePositions.
void write_mask_image(const std::string& path, const SequenceLayout& layout, const AttentionMask& mask);

}  // namespace flexgen
