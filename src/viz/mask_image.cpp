#include "flexgen/mask_image.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "flexgen/mask_view.h"

namespace flexgen {

namespace {

struct Rgb {
  uint8_t r, g, b;
};
constexpr Rgb kBackground{255, 255, 255};
constexpr Rgb kBlocked{240, 240, 240};
constexpr Rgb kAllowed{31, 78, 121};
constexpr Rgb kBoundary{214, 39, 40};
constexpr Rgb kText{0, 0, 0};
constexpr int64_t kFontScale = 2;  // 3x5 glyphs drawn as 6x10 pixels

// 3x5 bitmap glyphs (rows top to bottom, 3 bits each, MSB = left) for label characters.
const uint8_t* glyph(char c) {
  static const uint8_t digits[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
                                        {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1},
                                        {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};
  static const uint8_t B[5] = {6, 5, 6, 5, 6}, C[5] = {7, 4, 4, 4, 7}, E[5] = {7, 4, 6, 4, 7},
                       G[5] = {7, 4, 5, 5, 7}, P[5] = {6, 5, 6, 4, 4}, S[5] = {3, 4, 2, 1, 6};
  if (c >= '0' && c <= '9') return digits[c - '0'];
  switch (c) {
    case 'B': return B;
    case 'C': return C;
    case 'E': return E;
    case 'G': return G;
    case 'P': return P;
    case 'S': return S;
  }
  return nullptr;
}

constexpr int64_t text_width(size_t chars) { return static_cast<int64_t>(chars) * 4 * kFontScale; }

// A boundary marks the start of every non-empty span but the first.
struct Mark {
  int64_t position;
  std::string label;
};

std::vector<Mark> boundary_marks(const SequenceLayout& layout) {
  std::vector<Mark> marks;
  for (const Span& s : layout.spans) {
    if (s.length() > 0) marks.push_back(Mark{s.start, position_label(layout, s.start)});
  }
  return marks;
}

void check_size(const SequenceLayout& layout) {
  if (layout.length() == 0) throw std::invalid_argument("--image: the sequence is empty");
  if (layout.length() > kMaxImagePositions)
    throw std::invalid_argument("--image: the sequence has " + std::to_string(layout.length()) +
                                " positions; pictures are drawn up to " + std::to_string(kMaxImagePositions));
}

class Canvas {
 public:
  Canvas(int64_t w, int64_t h) {
    img_.width = w;
    img_.height = h;
    img_.pixels.assign(static_cast<size_t>(w * h * 3), 255);
  }
  void fill(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
    x0 = std::max<int64_t>(x0, 0);
    y0 = std::max<int64_t>(y0, 0);
    x1 = std::min(x1, img_.width);
    y1 = std::min(y1, img_.height);
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = x0; x < x1; ++x) {
        uint8_t* p = &img_.pixels[static_cast<size_t>((y * img_.width + x) * 3)];
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
      }
    }
  }
  void text(int64_t x, int64_t y, const std::string& s) {
    for (char ch : s) {
      if (const uint8_t* g = glyph(ch)) {
        for (int row = 0; row < 5; ++row)
          for (int col = 0; col < 3; ++col)
            if (g[row] & (4 >> col))
              fill(x + col * kFontScale, y + row * kFontScale, x + (col + 1) * kFontScale,
                   y + (row + 1) * kFontScale, kText);
      }
      x += 4 * kFontScale;
    }
  }
  RgbImage take() { return std::move(img_); }

 private:
  RgbImage img_;
};

}  // namespace

MaskImageGeometry mask_image_geometry(int64_t length) {
  MaskImageGeometry g;
  g.length = length;
  g.cell = std::clamp<int64_t>(768 / std::max<int64_t>(length, 1), 1, 16);
  return g;
}

RgbImage render_mask_raster(const SequenceLayout& layout, const AttentionMask& mask) {
  check_size(layout);
  const MaskImageGeometry geo = mask_image_geometry(layout.length());
  const int64_t len = layout.length(), c = geo.cell;
  Canvas canvas(geo.side(), geo.side());
  canvas.fill(0, 0, geo.side(), geo.side(), kBackground);
  for (int64_t q = 0; q < len; ++q) {
    for (int64_t k = 0; k < len; ++k) {
      canvas.fill(geo.origin(k), geo.origin(q), geo.origin(k) + c, geo.origin(q) + c,
                  mask.allowed(q, k) ? kAllowed : kBlocked);
    }
  }
  int64_t next_free_x = 0, next_free_y = 0;
  for (const Mark& m : boundary_marks(layout)) {
    const int64_t at = geo.origin(m.position);
    if (m.position > 0) {
      canvas.fill(at, geo.margin, at + 1, geo.origin(len), kBoundary);
      canvas.fill(geo.margin, at, geo.origin(len), at + 1, kBoundary);
    }
    if (!m.label.empty() && at >= next_free_x) {
      canvas.text(at, 8, m.label);
      next_free_x = at + text_width(m.label.size()) + kFontScale;
    }
    if (!m.label.empty() && at >= next_free_y) {
      canvas.text(4, at, m.label);
      next_free_y = at + 6 * kFontScale;
    }
  }
  return canvas.take();
}

std::string render_mask_svg(const SequenceLayout& layout, const AttentionMask& mask) {
  check_size(layout);
  const MaskImageGeometry geo = mask_image_geometry(layout.length());
  const int64_t len = layout.length(), c = geo.cell, side = geo.side();
  auto hex = [](Rgb col) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", col.r, col.g, col.b);
    return std::string(buf);
  };
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << side << "\" height=\"" << side
      << "\" viewBox=\"0 0 " << side << " " << side << "\" shape-rendering=\"crispEdges\">\n";
  out << "<title>attention mask, " << len << "x" << len << "</title>\n";
  out << "<rect width=\"" << side << "\" height=\"" << side << "\" fill=\"" << hex(kBackground) << "\"/>\n";
  out << "<rect id=\"matrix\" x=\"" << geo.margin << "\" y=\"" << geo.margin << "\" width=\"" << len * c
      << "\" height=\"" << len * c << "\" fill=\"" << hex(kBlocked) << "\"/>\n";
  out << "<g id=\"allowed\" fill=\"" << hex(kAllowed) << "\">\n";
  for (int64_t q = 0; q < len; ++q) {
    int64_t k = 0;
    while (k < len) {
      while (k < len && !mask.allowed(q, k)) ++k;
      const int64_t start = k;
      while (k < len && mask.allowed(q, k)) ++k;
      if (k > start)
        out << "<rect x=\"" << geo.origin(start) << "\" y=\"" << geo.origin(q) << "\" width=\"" << (k - start) * c
            << "\" height=\"" << c << "\"/>\n";
    }
  }
  out << "</g>\n<g id=\"boundaries\" stroke=\"" << hex(kBoundary) << "\" stroke-width=\"1\">\n";
  const std::vector<Mark> marks = boundary_marks(layout);
  for (const Mark& m : marks) {
    if (m.position == 0) continue;
    const int64_t at = geo.origin(m.position);
    out << "<line x1=\"" << at << "\" y1=\"" << geo.margin << "\" x2=\"" << at << "\" y2=\"" << geo.origin(len)
        << "\"/>\n<line x1=\"" << geo.margin << "\" y1=\"" << at << "\" x2=\"" << geo.origin(len) << "\" y2=\""
        << at << "\"/>\n";
  }
  out << "</g>\n<g id=\"labels\" font-family=\"monospace\" font-size=\"10\" fill=\"" << hex(kText) << "\">\n";
  for (const Mark& m : marks) {
    if (m.label.empty()) continue;
    const int64_t at = geo.origin(m.position);
    out << "<text x=\"" << at << "\" y=\"" << geo.margin - 6 << "\">" << m.label << "</text>\n";
    out << "<text x=\"4\" y=\"" << at + 10 << "\">" << m.label << "</text>\n";
  }
  out << "</g>\n</svg>\n";
  return out.str();
}

void write_mask_image(const std::string& path, const SequenceLayout& layout, const AttentionMask& mask) {
  auto ends_with = [&](const std::string& ext) {
    if (path.size() < ext.size()) return false;
    std::string tail = path.substr(path.size() - ext.size());
    std::transform(tail.begin(), tail.end(), tail.begin(), [](unsigned char ch) { return std::tolower(ch); });
    return tail == ext;
  };
  const bool svg = ends_with(".svg"), png = ends_with(".png");
  if (!svg && !png) throw std::invalid_argument("--image: '" + path + "' must end in .svg or .png");
  const std::string tmp = path + ".tmp";
  if (svg) {
    const std::string text = render_mask_svg(layout, mask);
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open for writing");
    f << text;
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw std::runtime_error(path + ": write failed");
    }
  } else {
    const RgbImage img = render_mask_raster(layout, mask);
    try {
      write_png(tmp, img);
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": cannot move the finished file into place");
  }
}

}  // namespace flexgen
