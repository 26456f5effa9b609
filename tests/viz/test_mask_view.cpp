#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "flexgen/mask_view.h"

using namespace flexgen;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

SequenceLayout seed_layout() { return layout_from_lengths({48, 47, 48, 49, 46}, false, 0, 0, 10); }

}  // namespace

TEST(MaskView, SeedSamplingPicksTheSeedPositions) {
  const std::vector<int64_t> expected = {0,   16,  32,  47,  48,  63,  79,  94,  95,  111, 127, 142, 143,
                                         159, 175, 191, 192, 207, 222, 237, 238, 239, 240, 241, 242};
  EXPECT_EQ(sample_positions(seed_layout(), 25), expected);
}

TEST(MaskView, ReproducesTheSeedRowsVerbatim) {
  const SequenceLayout l = seed_layout();
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  const auto got = lines_of(render_mask_matrix(l, m, MaskViewOptions{}));
  const auto seed = lines_of(read_file(std::string(FLEXGEN_SOURCE_DIR) + "/tests/data/seed_mask_excerpt.txt"));
  ASSERT_GE(seed.size(), 20u);
  // The seed elides rows with "    ..."; every other line must appear verbatim, in order.
  size_t at = 0;
  for (const std::string& line : seed) {
    if (line == "    ...") continue;
    while (at < got.size() && got[at] != line) ++at;
    ASSERT_LT(at, got.size()) << "seed line not reproduced: [" << line << "]";
    ++at;
  }
  // Header block is exactly the first lines, and there are 25 rows.
  EXPECT_EQ(got[0], "Attention Mask Visualization:");
  EXPECT_EQ(got[2], "Mask Matrix (248x248):");
  EXPECT_EQ(got.size(), 5u + 25u);
  EXPECT_EQ(got.back().substr(0, 7), "    242");
}

TEST(MaskView, LegendListsSegmentsAndGeneration) {
  const SequenceLayout l = seed_layout();
  const auto legend = render_legend(l, false);
  EXPECT_NE(legend.find("  Segment 1: positions 0-47 (length 48)\n"), std::string::npos);
  EXPECT_NE(legend.find("  Segment 5: positions 192-237 (length 46)\n"), std::string::npos);
  EXPECT_NE(legend.find("Generation starts at position 238 (10 generated tokens)"), std::string::npos);
}

TEST(MaskView, AsciiModeHasNoMultibyteCharacters) {
  const SequenceLayout l = layout_from_lengths({5, 6}, true, 3, 2, 4);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  MaskViewOptions o;
  o.ascii = true;
  const std::string text = render_mask_matrix(l, m, o) + render_legend(l, true, PositionMode::Restart) +
                           render_block_view(build_block_mask(l, m.spec, 4), true);
  for (unsigned char c : text) ASSERT_LT(c, 0x80);
  EXPECT_NE(text.find(" B"), std::string::npos);
  EXPECT_NE(text.find("P1"), std::string::npos);
  EXPECT_NE(text.find("position ids 4-8"), std::string::npos);  // segment 1 restarts at S = 4
}

TEST(MaskView, FullMatrixShowsEveryPositionAndCellsMatchAllowed) {
  const SequenceLayout l = layout_from_lengths({3, 4}, true, 0, 1, 2);
  const AttentionMask m = make_attention_mask(l, default_mask_spec(l));
  MaskViewOptions o;
  o.full = true;
  o.ascii = true;
  const auto lines = lines_of(render_mask_matrix(l, m, o));
  ASSERT_EQ(lines.size(), 5u + static_cast<size_t>(l.length()));
  EXPECT_EQ(lines[3], "  Showing all 11 positions");
  for (int64_t q = 0; q < l.length(); ++q) {
    const std::string& row = lines[5 + q];
    for (int64_t k = 0; k < l.length(); ++k) {
      const char cell = row[7 + 3 * k + 2];
      EXPECT_EQ(cell, m.allowed(q, k) ? '#' : '.') << q << "," << k;
    }
  }
  const SequenceLayout big = layout_from_lengths({600}, false, 0, 0, 0);
  EXPECT_THROW(render_mask_matrix(big, make_attention_mask(big, default_mask_spec(big)), o), std::invalid_argument);
}

TEST(MaskView, SampledPositionsAreSortedUniqueAndBounded) {
  for (int64_t max : {1, 5, 25, 60}) {
    const SequenceLayout l = layout_from_lengths({100, 3, 1, 250}, true, 20, 3, 30);
    const auto p = sample_positions(l, max);
    EXPECT_LE(static_cast<int64_t>(p.size()), max);
    for (size_t i = 1; i < p.size(); ++i) EXPECT_LT(p[i - 1], p[i]);
    for (int64_t x : p) EXPECT_LT(x, l.length());
  }
}

TEST(MaskView, BlockViewAndStats) {
  const SequenceLayout l = layout_from_lengths({128, 128, 128, 128, 128}, false, 0, 0, 128);
  const BlockMask bm = build_block_mask(l, default_mask_spec(l), 128);
  const auto lines = lines_of(render_block_view(bm, true));
  ASSERT_EQ(lines.size(), 3u + 6u);
  EXPECT_EQ(lines[0], "Block Mask (block size 128, 6x6 blocks):");
  EXPECT_EQ(lines[3], "      0  +  .  .  .  .  . ");
  EXPECT_EQ(lines[8], "      5  #  #  #  #  #  + ");
  const std::string stats = render_block_stats(bm);
  EXPECT_NE(stats.find("blocks: 5 full, 6 partial, 25 empty of 36"), std::string::npos);
}
