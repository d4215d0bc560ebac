// FITS reader and writer. The reader is checked against files written byte by byte from the FITS
// standard (support/raw_fits), so a bug shared by CFITSIO usage in reader and writer cannot hide;
// expected values are exact (integers and their BSCALE/BZERO images are exact in float64, and in
// float32 for 8/16-bit data).

#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>

#include "support/raw_fits.hpp"
#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

using demix::test::RawHdu;
using demix::test::TempDir;
using demix::test::write_raw_fits;

namespace {

std::vector<double> ramp(int n, double start, double step) {
  std::vector<double> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + step * i;
  return v;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const demix::Error& e) {
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST(FitsRead, EveryBitpixWithScaling) {
  TempDir dir;
  struct Case {
    int bitpix;
    double start, bscale, bzero;
    at::ScalarType expected;
  };
  const Case cases[] = {
      {8, 0, 1, 0, at::kFloat},
      {16, -300, 1, 32768, at::kFloat},
      {16, -7, 0.5, -3, at::kDouble},
      {32, -100000, 2, 10, at::kDouble},
      {64, -5000000000.0, 1, 0, at::kDouble},
      {-32, -1.5, 1, 0, at::kFloat},
      {-64, 1e-300, 1, 0, at::kDouble},
  };
  for (const Case& c : cases) {
    RawHdu hdu{.bitpix = c.bitpix, .naxes = {5, 3}, .values = ramp(15, c.start, 3)};
    if (c.bscale != 1 || c.bzero != 0)
      hdu.cards = {"BSCALE  = " + std::to_string(c.bscale), "BZERO   = " + std::to_string(c.bzero)};
    const std::string path = dir.path("b" + std::to_string(c.bitpix) + ".fits");
    write_raw_fits(path, {hdu});
    const demix::FitsImage img = demix::read_fits(path);
    SCOPED_TRACE("BITPIX " + std::to_string(c.bitpix));
    EXPECT_EQ(img.bitpix, c.bitpix);
    EXPECT_EQ(img.data.scalar_type(), c.expected);
    ASSERT_EQ(img.data.sizes(), (std::vector<int64_t>{3, 5})); // (NAXIS2, NAXIS1)
    const at::Tensor got = img.data.to(at::kDouble);
    for (int i = 0; i < 15; ++i) {
      double stored = hdu.values[i];
      if (c.bitpix == -32) stored = static_cast<float>(stored);
      EXPECT_EQ(got.flatten()[i].item<double>(), stored * c.bscale + c.bzero) << "pixel " << i;
    }
    EXPECT_EQ(img.scaled, c.bscale != 1 || c.bzero != 0);
  }
}

TEST(FitsRead, BlankPixelsBecomeNaN) {
  TempDir dir;
  write_raw_fits(
      dir.path("blank.fits"),
      {{.bitpix = 16, .naxes = {2, 2}, .values = {1, -999, 3, 4}, .cards = {"BLANK   = -999"}}});
  const at::Tensor x = demix::read_fits(dir.path("blank.fits")).data;
  EXPECT_TRUE(std::isnan(x[0][1].item<float>()));
  EXPECT_EQ(x[1][1].item<float>(), 4.0f);
}

TEST(FitsRead, CubesAndDegenerateAxes) {
  TempDir dir;
  write_raw_fits(dir.path("cube.fits"),
                 {{.bitpix = -64, .naxes = {4, 3, 2}, .values = ramp(24, 0, 1)}});
  const at::Tensor cube = demix::read_fits(dir.path("cube.fits")).data;
  ASSERT_EQ(cube.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(cube[1][2][3].item<double>(), 23.0); // last pixel in FITS order is last in C order
  EXPECT_EQ(cube[0][1][0].item<double>(), 4.0);  // NAXIS1 is the fastest axis

  // A radio-style image with trailing frequency and Stokes axes of length 1.
  write_raw_fits(dir.path("stokes.fits"),
                 {{.bitpix = -32, .naxes = {4, 3, 1, 1}, .values = ramp(12, 0, 1)}});
  EXPECT_EQ(demix::read_fits(dir.path("stokes.fits")).data.sizes(), (std::vector<int64_t>{3, 4}));
}

TEST(FitsRead, SelectsHduByNumberAndName) {
  TempDir dir;
  const std::string path = dir.path("mef.fits");
  write_raw_fits(
      path,
      {{.bitpix = 8, .naxes = {}},
       {.bitpix = -32, .naxes = {2, 2}, .values = {1, 1, 1, 1}, .cards = {"EXTNAME = 'SCI     '"}},
       {.bitpix = -32,
        .naxes = {3, 2},
        .values = ramp(6, 10, 1),
        .cards = {"EXTNAME = 'ERR     '"}}});
  EXPECT_EQ(demix::read_fits(path).name, "SCI"); // first HDU holding an image
  const demix::FitsImage err = demix::read_fits(path + "[ERR]");
  EXPECT_EQ(err.hdu_index, 2);
  EXPECT_EQ(err.data.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(demix::read_fits(path + "[2]").data[1][2].item<float>(), 15.0f);
  EXPECT_EQ(demix::read_fits(path + "[sci]").name, "SCI"); // EXTNAME matching ignores case

  const std::string empty = error_of([&] { demix::read_fits(path + "[0]"); });
  EXPECT_NE(empty.find("no image data"), std::string::npos) << empty;
  // No such HDU: a ValueError listing the HDUs there are (fits.cpp, throw_if_no_such_hdu).
  EXPECT_THROW(demix::read_fits(path + "[NOPE]"), demix::ValueError);

  const auto hdus = demix::list_fits_hdus(path + "[1]");
  ASSERT_EQ(hdus.size(), 3u);
  EXPECT_EQ(hdus[0].name, "PRIMARY");
  EXPECT_EQ(hdus[2].name, "ERR");
  EXPECT_EQ(hdus[2].naxes, (std::vector<long long>{3, 2}));
}

TEST(FitsRead, RejectsBadFiles) {
  TempDir dir;
  EXPECT_NE(error_of([&] { demix::read_fits(dir.path("none.fits")); }).find("file not found"),
            std::string::npos);
  EXPECT_THROW(demix::read_fits(dir.path("none.fits")), demix::IoError);

  std::ofstream(dir.path("text.fits")) << "this is not a FITS file\n";
  EXPECT_THROW(demix::read_fits(dir.path("text.fits")), demix::FormatError);

  write_raw_fits(dir.path("cut.fits"),
                 {{.bitpix = -64, .naxes = {64, 64}, .values = ramp(4096, 0, 1)}},
                 /*truncate_bytes=*/5000);
  const std::string cut = error_of([&] { demix::read_fits(dir.path("cut.fits")); });
  EXPECT_NE(cut.find("truncated"), std::string::npos) << cut;

  write_raw_fits(dir.path("line.fits"), {{.bitpix = -32, .naxes = {8}, .values = ramp(8, 0, 1)}});
  const std::string line = error_of([&] { demix::read_fits(dir.path("line.fits")); });
  EXPECT_NE(line.find("NAXIS = 1"), std::string::npos) << line;
  EXPECT_THROW(demix::read_fits(dir.path("line.fits")), demix::ShapeError);

  write_raw_fits(dir.path("empty.fits"), {{.bitpix = 8, .naxes = {}}});
  EXPECT_THROW(demix::read_fits(dir.path("empty.fits")), demix::ShapeError);
}

// A header that claims 40000 x 40000 pixels in a 5760-byte file is refused before its 6.4 GB are
// allocated (the message gives both sizes); gzip files, whose size says nothing of the data's,
// are still read.
TEST(FitsRead, RefusesHeadersThatClaimMoreThanTheFile) {
  TempDir dir;
  std::string header;
  for (const char* card : {"SIMPLE  =                    T", "BITPIX  =                  -32",
                           "NAXIS   =                    2", "NAXIS1  =                40000",
                           "NAXIS2  =                40000", "END"})
    header += std::string(card) + std::string(80 - std::strlen(card), ' ');
  header.resize(2880, ' ');
  std::ofstream(dir.path("liar.fits"), std::ios::binary) << header << std::string(2880, '\0');
  const std::string e = error_of([&] { demix::read_fits(dir.path("liar.fits")); });
  for (const char* w : {"truncated", "1600000000 pixels", "5760 bytes"})
    EXPECT_NE(e.find(w), std::string::npos) << e;
  EXPECT_THROW(demix::read_fits(dir.path("liar.fits")), demix::FormatError);
  const at::Tensor x = at::rand({20, 30}, at::kFloat);
  demix::write_fits(dir.path("x.fits.gz"), x);
  EXPECT_TRUE(at::equal(demix::read_fits(dir.path("x.fits.gz")).data, x));
}

TEST(FitsWrite, RoundTripKeepsPixelsAndHeader) {
  TempDir dir;
  demix::FitsHeader header;
  header.set("CTYPE1", std::string_view("RA---TAN"), "projection");
  header.set("CRVAL1", 83.633083, "[deg]");
  header.set("CDELT1", -2.7777777777777778e-4);
  header.set("NSIDE", 512LL);
  header.set("LOGSCL", true);
  header.set("BUNIT", std::string_view("MJy/sr"));
  header.add_history("made by a test");
  for (auto dtype : {at::kFloat, at::kDouble}) {
    for (std::vector<int64_t> shape : {std::vector<int64_t>{6, 9}, {3, 6, 9}}) {
      const at::Tensor x = at::randn(shape, at::TensorOptions().dtype(dtype));
      const std::string path = dir.path("rt.fits");
      demix::write_fits(path, x, header,
                        dtype == at::kDouble ? demix::FitsPixelType::Float64
                                             : demix::FitsPixelType::Float32);
      const demix::FitsImage y = demix::read_fits(path);
      EXPECT_EQ(y.data.scalar_type(), dtype);
      EXPECT_TRUE(at::equal(y.data, x));
      EXPECT_EQ(y.header.value("CTYPE1"), "RA---TAN");
      EXPECT_EQ(y.header.number("CRVAL1"), 83.633083);
      EXPECT_EQ(y.header.number("CDELT1"), -2.7777777777777778e-4); // %.17G round-trips doubles
      EXPECT_EQ(y.header.value("NSIDE"), "512");
      EXPECT_EQ(y.header.value("LOGSCL"), "T");
      EXPECT_TRUE(y.header.contains("DATE"));
      EXPECT_TRUE(y.header.contains("HISTORY"));
      EXPECT_FALSE(y.header.contains("BITPIX")); // structural keywords are not carried
      EXPECT_FALSE(y.header.contains("CHECKSUM"));
    }
  }
}

TEST(FitsWrite, MultiExtensionWithNames) {
  TempDir dir;
  const at::Tensor a = at::randn({4, 5}), b = at::randn({2, 4, 5}, at::kDouble);
  demix::FitsHeader primary;
  primary.set("OBJECT", std::string_view("dust"));
  demix::write_fits_extensions(
      dir.path("m.fits"),
      {{.name = "MAP", .data = a},
       {.name = "NOISE", .data = b, .type = demix::FitsPixelType::Float64}},
      primary);
  EXPECT_TRUE(at::equal(demix::read_fits(dir.path("m.fits[MAP]")).data, a));
  EXPECT_TRUE(at::equal(demix::read_fits(dir.path("m.fits[NOISE]")).data, b));
  const auto hdus = demix::list_fits_hdus(dir.path("m.fits"));
  ASSERT_EQ(hdus.size(), 3u);
  EXPECT_TRUE(hdus[0].naxes.empty());
  EXPECT_EQ(hdus[1].name, "MAP");
  EXPECT_THROW(demix::write_fits_extensions(dir.path("d.fits"),
                                            {{.name = "A", .data = a}, {.name = "A", .data = a}}),
               demix::ValueError);
}

TEST(FitsWrite, FailureLeavesNoFileAndKeepsTheOldOne) {
  TempDir dir;
  const std::string path = dir.path("out.fits");
  const at::Tensor old = at::ones({3, 3});
  demix::write_fits(path, old);
  // Complex data is refused after the temporary file was created: the old file must survive.
  EXPECT_THROW(demix::write_fits(path, at::randn({3, 3}, at::kComplexFloat)), demix::ValueError);
  EXPECT_THROW(demix::write_fits(path, at::randn({3})), demix::ShapeError);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"out.fits"});
  EXPECT_TRUE(at::equal(demix::read_fits(path).data, old));
  EXPECT_THROW(demix::write_fits(dir.path("missing/out.fits"), old), demix::IoError);
}

TEST(FitsHeader, CardsReplaceAndAccumulate) {
  demix::FitsHeader h;
  h.set("OBJECT", std::string_view("a"));
  h.set("OBJECT", std::string_view("it's b"));
  h.add_history("one");
  h.add_history("two");
  h.add_card("BITPIX  =                  -32"); // structural: ignored
  h.add_card("NAXIS1  =                   10");
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.value("OBJECT"), "it's b");
  EXPECT_FALSE(h.value("NOPE").has_value());
  EXPECT_THROW(h.number("OBJECT"), demix::ValueError);
  for (const auto& c : h.cards()) EXPECT_EQ(c.size(), 80u);
  h.erase("HISTORY");
  EXPECT_EQ(h.size(), 1u);
}

// ---- Coefficient tables -------------------------------------------------------------------------

namespace {

demix::Coefficients sample_coefficients(int64_t batch, bool complex) {
  demix::Coefficients c;
  c.classes = {"S11", "Empty", "C01"}; // "Empty" has no coefficient: kept through NCLASS
  c.label_names = {"j1", "t1"};
  c.class_id = at::tensor({0, 0, 2, 2, 2}, at::kLong);
  c.labels = at::tensor({0, 0, 1, -1, 0, 1, 1, 2, 2, 3}, at::kLong).reshape({5, 2});
  const at::Tensor re = at::arange(batch * 5, at::kDouble).reshape({batch, 5}) * 0.1 - 1.0 / 3.0;
  c.values = complex ? at::complex(re, re * re + 1e-300) : re;
  return c;
}

} // namespace

TEST(FitsCoefficients, RoundTripRealComplexAndBatches) {
  TempDir dir;
  for (int64_t batch : {1, 3}) {
    for (bool complex : {false, true}) {
      SCOPED_TRACE("batch " + std::to_string(batch) + (complex ? " complex" : " real"));
      const demix::Coefficients c = sample_coefficients(batch, complex);
      demix::FitsHeader header;
      header.set("CTYPE1", std::string_view("RA---TAN"));
      header.set("STAT", std::string_view("wph"));
      const std::string path = dir.path("c.fits");
      demix::write_coefficients_fits(path, c, header);
      demix::FitsHeader back_header;
      const demix::Coefficients back = demix::read_coefficients_fits(path, &back_header);
      EXPECT_EQ(back.classes, c.classes);
      EXPECT_EQ(back.label_names, c.label_names);
      EXPECT_TRUE(back.class_id.equal(c.class_id));
      EXPECT_TRUE(back.labels.equal(c.labels));
      EXPECT_EQ(back.values.is_complex(), complex);
      ASSERT_EQ(back.values.sizes(), c.values.sizes());
      EXPECT_TRUE(back.values.equal(c.values)); // float64 stored: exact
      EXPECT_EQ(back_header.value("CTYPE1"), "RA---TAN");
      EXPECT_EQ(back_header.value("STAT"), "wph");
      // The table is listed as such, after an empty primary HDU.
      const auto hdus = demix::list_fits_hdus(path);
      ASSERT_EQ(hdus.size(), 2u);
      EXPECT_EQ(hdus[1].name, "COEFFS");
      EXPECT_EQ(hdus[1].kind, "binary table");
      EXPECT_EQ(hdus[1].naxes, (std::vector<long long>{5, 5})); // columns, rows
    }
  }
}

TEST(FitsCoefficients, FloatValuesFromAnOperatorSurvive) {
  TempDir dir;
  demix::Coefficients c = sample_coefficients(2, true);
  c.values = c.values.to(at::kComplexFloat);
  demix::write_coefficients_fits(dir.path("f.fits"), c);
  const demix::Coefficients back = demix::read_coefficients_fits(dir.path("f.fits"));
  EXPECT_TRUE(back.values.to(at::kComplexFloat).equal(c.values)); // float32 -> float64 is exact
}

TEST(FitsCoefficients, ErrorsNameTheProblem) {
  TempDir dir;
  demix::Coefficients c = sample_coefficients(1, false);
  c.values = c.values.reshape({5});
  EXPECT_NE(error_of([&] { demix::write_coefficients_fits(dir.path("x.fits"), c); }).find("(B, K)"),
            std::string::npos);
  EXPECT_FALSE(std::ifstream(dir.path("x.fits")).good());
  c = sample_coefficients(1, false);
  c.label_names = {"j1", "REAL"};
  EXPECT_THROW(demix::write_coefficients_fits(dir.path("x.fits"), c), demix::ValueError);
  // An image file has no COEFFS table.
  demix::write_fits(dir.path("img.fits"), at::zeros({4, 4}));
  const std::string e = error_of([&] { demix::read_coefficients_fits(dir.path("img.fits")); });
  EXPECT_NE(e.find("COEFFS"), std::string::npos) << e;
  EXPECT_NE(e.find("img.fits"), std::string::npos) << e;
  EXPECT_THROW(demix::read_coefficients_fits(dir.path("missing.fits")), demix::IoError);
}
