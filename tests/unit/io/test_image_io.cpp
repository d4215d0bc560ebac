// Format detection from content, dimension checks, and format-independent round trips.

#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/npy.hpp>

#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

using demix::test::TempDir;

TEST(Io, DetectsFormatFromContentNotName) {
  TempDir dir;
  demix::write_npy(dir.path("really_npy.fits"), at::ones({2, 2}));
  demix::write_fits(dir.path("really_fits.npy"), at::ones({2, 2}));
  EXPECT_EQ(demix::detect_input_format(dir.path("really_npy.fits")), demix::FileFormat::Npy);
  EXPECT_EQ(demix::detect_input_format(dir.path("really_fits.npy")), demix::FileFormat::Fits);
  std::ofstream(dir.path("empty.fits"));
  EXPECT_THROW(demix::detect_input_format(dir.path("empty.fits")), demix::FormatError);
  std::ofstream(dir.path("csv.fits")) << "1,2,3\n";
  EXPECT_THROW(demix::detect_input_format(dir.path("csv.fits")), demix::FormatError);
  EXPECT_THROW(demix::detect_input_format(dir.path("nothing.npy")), demix::IoError);
  EXPECT_THROW(demix::read_image(dir.path("really_npy.fits") + "[1]"), demix::ValueError);
}

TEST(Io, OutputFormatFromExtension) {
  EXPECT_EQ(demix::format_for_output("a/b.FITS"), demix::FileFormat::Fits);
  EXPECT_EQ(demix::format_for_output("b.fits.gz"), demix::FileFormat::Fits);
  EXPECT_EQ(demix::format_for_output("b.npy"), demix::FileFormat::Npy);
  EXPECT_EQ(demix::format_for_output("b.png"), demix::FileFormat::Png);
  EXPECT_THROW(demix::format_for_output("b.txt"), demix::ValueError);
}

TEST(Io, ReadImageChecksDimensionsAndNonFinite) {
  TempDir dir;
  demix::write_npy(dir.path("1d.npy"), at::ones({5}));
  demix::write_npy(dir.path("4d.npy"), at::ones({2, 2, 2, 2}));
  demix::write_npy(dir.path("empty.npy"), at::ones({0, 4}));
  EXPECT_THROW(demix::read_image(dir.path("1d.npy")), demix::ShapeError);
  EXPECT_THROW(demix::read_image(dir.path("4d.npy")), demix::ShapeError);
  EXPECT_THROW(demix::read_image(dir.path("empty.npy")), demix::ShapeError);

  at::Tensor x = at::ones({4, 4}, at::kDouble);
  x[2][2] = NAN;
  demix::write_npy(dir.path("nan.npy"), x);
  EXPECT_THROW(demix::read_image(dir.path("nan.npy")), demix::ValueError);
  const demix::Image img =
      demix::read_image(dir.path("nan.npy"), {.non_finite = demix::NonFinitePolicy::Mean});
  EXPECT_EQ(img.data[2][2].item<double>(), 1.0);
  EXPECT_EQ(img.format, "npy float64");
}

TEST(Io, ConvertsBetweenFormatsKeepingHeaderAndType) {
  TempDir dir;
  demix::Image image{.data = at::randn({3, 8, 5}, at::kDouble)};
  image.header.set("CRPIX1", 4.5);
  demix::write_image(dir.path("a.fits"), image);
  const demix::Image fits = demix::read_image(dir.path("a.fits"));
  EXPECT_TRUE(at::equal(fits.data, image.data));
  EXPECT_EQ(fits.header.number("CRPIX1"), 4.5);

  demix::write_image(dir.path("b.npy"), fits, {.type = demix::PixelType::Float32});
  const demix::Image npy = demix::read_image(dir.path("b.npy"));
  EXPECT_EQ(npy.data.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(npy.data, image.data.to(at::kFloat)));

  demix::Image complex{.data = at::randn({4, 4}, at::kComplexDouble)};
  demix::write_image(dir.path("z.npy"), complex);
  EXPECT_TRUE(at::equal(demix::read_image(dir.path("z.npy")).data, complex.data));
  EXPECT_THROW(demix::write_image(dir.path("z.fits"), complex), demix::ValueError);
  EXPECT_THROW(demix::write_image(dir.path("z.png"), complex), demix::ValueError);
  EXPECT_EQ(dir.files(), (std::vector<std::string>{"a.fits", "b.npy", "z.npy"}));
}
