// Catalogue tables (CSV and FITS binary tables), 4-D FITS images and the streaming FitsWriter:
// round trips with exact values, errors naming the problem, no file left by a failed write.

#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/table.hpp>

#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

using demix::test::TempDir;

namespace {

demix::Table sample_table() {
  demix::Table t;
  t.add("id", at::arange(4, at::kLong), "", "row number");
  // Doubles without short decimal forms: CSV must write them in round-trip form.
  t.add("x", at::tensor({0.1, -2.5e17, 1e-300, 1.0 / 3}, at::kDouble), "pixel");
  t.add("flux", at::arange(12, at::kDouble).view({4, 3}) * 0.7, "electron", "per band");
  t.add_text("name", {"a", "b, with comma", "c \"quoted\"", ""});
  return t;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

} // namespace

TEST(Tables, CsvRoundTripIsExact) {
  TempDir dir;
  demix::write_csv(dir.path("t.csv"), sample_table());
  const demix::Table back = demix::read_csv(dir.path("t.csv"));
  // Vector columns become name_0, name_1, ...
  std::vector<std::string> names;
  for (const auto& c : back.columns) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"id", "x", "flux_0", "flux_1", "flux_2", "name"}));
  EXPECT_EQ(back.column("id").values.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(back.column("id").values, at::arange(4, at::kLong)));
  EXPECT_TRUE(at::equal(back.column("x").values, sample_table().column("x").values));
  EXPECT_TRUE(
      at::equal(back.column("flux_2").values, sample_table().column("flux").values.select(1, 2)));
  EXPECT_EQ(back.column("name").text,
            (std::vector<std::string>{"a", "b, with comma", "c \"quoted\"", ""}));
  EXPECT_EQ(back.rows(), 4);
  EXPECT_THROW(back.column("missing"), demix::ValueError);
}

TEST(Tables, CsvErrorsNameTheLine) {
  TempDir dir;
  write(dir.path("bad.csv"), "x,y\n1,2\n3\n");
  try {
    demix::read_csv(dir.path("bad.csv"));
    FAIL() << "no error";
  } catch (const demix::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
  }
  write(dir.path("empty.csv"), "\n\n");
  EXPECT_THROW(demix::read_csv(dir.path("empty.csv")), demix::FormatError);
  EXPECT_THROW(demix::read_csv(dir.path("missing.csv")), demix::IoError);
  // Numbers with spaces and a text column; positions as the deblender's CLI reads them.
  write(dir.path("pos.csv"), "x, y ,label\r\n 10.5, 20,g1\r\n3,4.25,g2\r\n");
  const demix::Table t = demix::read_csv(dir.path("pos.csv"));
  EXPECT_TRUE(at::equal(t.column("x").values, at::tensor({10.5, 3.0}, at::kDouble)));
  EXPECT_TRUE(at::equal(t.column("y").values, at::tensor({20.0, 4.25}, at::kDouble)));
  EXPECT_TRUE(t.column("label").is_text());
  demix::Table u;
  u.add("a", at::zeros({3}, at::kDouble));
  EXPECT_THROW(u.add("b", at::zeros({2}, at::kDouble)), demix::ShapeError);
  EXPECT_THROW(u.add("a", at::zeros({3}, at::kDouble)), demix::ValueError);
}

TEST(Tables, FitsBinaryTableRoundTrip) {
  TempDir dir;
  demix::FitsHeader primary, extra;
  primary.set("SURVEY", std::string("LSST"));
  extra.set("NITEMS", 4LL);
  demix::write_fits_table(dir.path("t.fits"), sample_table(), "TRUTH", primary, extra);
  demix::FitsHeader header;
  const demix::Table back = demix::read_fits_table(dir.path("t.fits[TRUTH]"), &header);
  const demix::Table ref = sample_table();
  ASSERT_EQ(back.columns.size(), ref.columns.size());
  for (std::size_t j = 0; j < ref.columns.size(); ++j) {
    const auto& a = ref.columns[j];
    const auto& b = back.columns[j];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.unit, b.unit);
    EXPECT_EQ(a.description, b.description);
    if (a.is_text())
      EXPECT_EQ(a.text, b.text);
    else
      EXPECT_TRUE(at::equal(a.values, b.values)) << a.name; // int64 'K' and float64 'D'
  }
  EXPECT_EQ(header.number("NITEMS"), 4.0);
  EXPECT_FALSE(header.contains("TTYPE1")); // column keywords are not user keywords
  // Without a selector: the first table HDU.
  EXPECT_EQ(demix::read_fits_table(dir.path("t.fits")).rows(), 4);
  // An image HDU is not a table.
  demix::write_fits(dir.path("img.fits"), at::zeros({3, 3}));
  EXPECT_THROW(demix::read_fits_table(dir.path("img.fits[0]")), demix::FormatError);
  // Case-insensitive duplicates are refused (FITS column names are case-blind).
  demix::Table clash;
  clash.add("x", at::zeros({1}, at::kDouble));
  clash.add("X", at::zeros({1}, at::kDouble));
  EXPECT_THROW(demix::write_fits_table(dir.path("c.fits"), clash, "T"), demix::ValueError);
  EXPECT_EQ(dir.files().size(), 2u);
}

TEST(Tables, FourDimensionalImagesRoundTrip) {
  TempDir dir;
  const at::Tensor cube = at::arange(2 * 3 * 4 * 5, at::kFloat).view({2, 3, 4, 5});
  demix::write_fits(dir.path("a.fits"), cube);
  const demix::FitsImage img = demix::read_fits(dir.path("a.fits"));
  EXPECT_TRUE(at::equal(img.data, cube));
  const auto hdus = demix::list_fits_hdus(dir.path("a.fits"));
  EXPECT_EQ(hdus[0].naxes, (std::vector<long long>{5, 4, 3, 2})); // FITS order: fastest first
  demix::write_fits_extensions(
      dir.path("b.fits"),
      {{.name = "STAMPS", .data = cube.to(at::kDouble), .type = demix::FitsPixelType::Float64}});
  EXPECT_TRUE(at::equal(demix::read_fits(dir.path("b.fits[STAMPS]")).data, cube.to(at::kDouble)));
  EXPECT_THROW(demix::write_fits(dir.path("c.fits"), at::zeros({1, 2, 2, 2, 2})),
               demix::ShapeError);
}

TEST(Tables, FitsWriterStreamsRowsAndCommitsAtomically) {
  TempDir dir;
  const at::Tensor data = at::randn({7, 2, 3, 4}, at::kFloat);
  {
    demix::FitsWriter w(dir.path("s.fits"));
    demix::FitsHeader h;
    h.set("KIND", std::string("test"));
    w.add_empty_primary(h);
    const int a = w.add_image_shape("A", {7, 2, 3, 4}, h);
    const int b = w.add_image_shape("B", {7, 2, 3, 4}, h, demix::FitsPixelType::Float64);
    // Rows out of order and interleaved between the two HDUs.
    w.write_rows(a, 4, data.slice(0, 4, 7));
    w.write_rows(b, 0, data.slice(0, 0, 3));
    w.write_rows(a, 0, data.slice(0, 0, 4));
    w.write_rows(b, 3, data.slice(0, 3, 7));
    EXPECT_THROW(w.write_rows(a, 5, data.slice(0, 0, 3)), demix::ShapeError); // overflow
    EXPECT_THROW(w.write_rows(a, 0, data.slice(1, 0, 1)), demix::ShapeError); // wrong shape
    w.add_image("PSF", data[0][0]);
    w.add_table("T", sample_table());
    EXPECT_EQ(dir.files().size(), 1u); // only the temporary so far
    w.commit();
  }
  EXPECT_TRUE(at::equal(demix::read_fits(dir.path("s.fits[A]")).data, data));
  const demix::FitsImage b = demix::read_fits(dir.path("s.fits[B]"));
  EXPECT_EQ(b.bitpix, -64);
  EXPECT_TRUE(at::equal(b.data, data.to(at::kDouble)));
  EXPECT_EQ(b.header.value("KIND"), "test");
  EXPECT_TRUE(at::equal(demix::read_fits(dir.path("s.fits[PSF]")).data, data[0][0]));
  EXPECT_EQ(demix::read_fits_table(dir.path("s.fits[T]")).rows(), 4);
  // A writer destroyed without commit() leaves nothing.
  {
    demix::FitsWriter w(dir.path("gone.fits"));
    w.add_image("", data[0]);
  }
  EXPECT_EQ(dir.files(), (std::vector<std::string>{"s.fits"}));
}
