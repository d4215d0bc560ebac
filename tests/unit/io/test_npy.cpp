// .npy reader and writer: round trips for every dtype and rank, and hand-made files (big-endian,
// Fortran order, version 2.0) checked against values written by hand, as an oracle independent of
// the writer. Round trips are bit-exact: no arithmetic happens between write and read.

#include <demix/core/errors.hpp>
#include <demix/io/npy.hpp>

#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <fstream>

using demix::test::TempDir;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string npy_bytes(int major, const std::string& dict, const std::string& data) {
  std::string header = dict;
  const std::size_t prelude = 8 + (major == 1 ? 2 : 4);
  while ((prelude + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  const auto len = static_cast<std::uint32_t>(header.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T> std::string big_endian(const std::vector<T>& values) {
  std::string out;
  for (T v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (int i = sizeof(T) - 1; i >= 0; --i) out += b[i];
  }
  return out;
}

} // namespace

TEST(Npy, RoundTripEveryDtypeAndRank) {
  TempDir dir;
  for (auto dtype : {at::kFloat, at::kDouble, at::kComplexFloat, at::kComplexDouble}) {
    for (std::vector<int64_t> shape : {std::vector<int64_t>{7}, {5, 3}, {2, 4, 6}, {2, 1, 3, 2}}) {
      const at::Tensor x = at::randn(shape, at::TensorOptions().dtype(dtype));
      const std::string path = dir.path("x.npy");
      demix::write_npy(path, x);
      const at::Tensor y = demix::read_npy(path);
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_EQ(y.sizes(), x.sizes());
      EXPECT_TRUE(at::equal(x, y)) << c10::toString(dtype) << " " << x.sizes();
    }
  }
}

TEST(Npy, WritesNonContiguousTensorsInLogicalOrder) {
  TempDir dir;
  const at::Tensor x = at::arange(12, at::kDouble).view({3, 4}).t(); // a transposed view
  demix::write_npy(dir.path("t.npy"), x);
  EXPECT_TRUE(at::equal(demix::read_npy(dir.path("t.npy")), x.contiguous()));
}

TEST(Npy, ReadsBigEndianFortranOrder) {
  TempDir dir;
  // The 2 x 3 matrix [[1, 2, 3], [4, 5, 6]] stored column by column, big-endian float64.
  const std::string path = dir.path("f.npy");
  write_bytes(path, npy_bytes(1, "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }",
                              big_endian<double>({1, 4, 2, 5, 3, 6})));
  const at::Tensor y = demix::read_npy(path);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(at::equal(y, at::arange(1, 7, at::kDouble).view({2, 3})));
  EXPECT_TRUE(y.is_contiguous());
}

TEST(Npy, ReadsBigEndianComplexAndVersion2) {
  TempDir dir;
  const std::string path = dir.path("c.npy");
  // Two complex64 values 1+2i, 3-4i: each component is swapped on its own.
  write_bytes(path, npy_bytes(2, "{'descr': '>c8', 'fortran_order': False, 'shape': (2,), }",
                              big_endian<float>({1, 2, 3, -4})));
  const at::Tensor y = demix::read_npy(path);
  ASSERT_EQ(y.scalar_type(), at::kComplexFloat);
  EXPECT_EQ(at::real(y)[1].item<float>(), 3.0f);
  EXPECT_EQ(at::imag(y)[1].item<float>(), -4.0f);
  EXPECT_EQ(at::imag(y)[0].item<float>(), 2.0f);
}

TEST(Npy, ReadsLittleEndianFortranCube) {
  TempDir dir;
  const at::Tensor x = at::randn({2, 3, 4}, at::kFloat);
  // Fortran order = C order of the transposed array.
  const at::Tensor f = x.permute({2, 1, 0}).contiguous();
  std::string data(static_cast<const char*>(f.data_ptr()), f.numel() * 4);
  write_bytes(dir.path("f3.npy"),
              npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", data));
  EXPECT_TRUE(at::equal(demix::read_npy(dir.path("f3.npy")), x));
}

TEST(Npy, RejectsBadFilesWithClearErrors) {
  TempDir dir;
  EXPECT_THROW(demix::read_npy(dir.path("missing.npy")), demix::IoError);
  write_bytes(dir.path("text.npy"), "hello world, not an array");
  EXPECT_THROW(demix::read_npy(dir.path("text.npy")), demix::FormatError);

  write_bytes(dir.path("bool.npy"),
              npy_bytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                        std::string(2, '\0')));
  try {
    demix::read_npy(dir.path("bool.npy"));
    FAIL() << "bool accepted";
  } catch (const demix::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'|b1'"), std::string::npos) << e.what();
  }

  demix::write_npy(dir.path("ok.npy"), at::randn({16, 16}, at::kDouble));
  std::ifstream in(dir.path("ok.npy"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  write_bytes(dir.path("cut.npy"), bytes.substr(0, bytes.size() - 100));
  try {
    demix::read_npy(dir.path("cut.npy"));
    FAIL() << "truncated file accepted";
  } catch (const demix::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

// Headers that lie (found by fuzzing and UBSan): negative and absurd sizes, products beyond
// int64 or beyond the file, a header length of 4 GiB in a 20-byte file. Each is a FormatError
// naming the problem, raised before anything of the announced size is allocated.
TEST(Npy, RejectsLyingHeadersBeforeAllocating) {
  TempDir dir;
  const auto expect = [&](const std::string& name, const std::string& bytes,
                          const std::string& words) {
    write_bytes(dir.path(name), bytes);
    try {
      demix::read_npy(dir.path(name));
      ADD_FAILURE() << name << " accepted";
    } catch (const demix::FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << name << ": " << e.what();
    }
  };
  const auto dict = [](const std::string& shape) {
    return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  };
  const std::string data(48, '\0');
  expect("negative.npy", npy_bytes(1, dict("(-3, 4)"), data), "'-3' is not a size");
  expect("word.npy", npy_bytes(1, dict("(3, x)"), data), "'x' is not a size");
  expect("digits.npy", npy_bytes(1, dict("(99999999999999999999, 4)"), data),
         "'99999999999999999999' is not a size");
  expect("overflow.npy", npy_bytes(1, dict("(4294967296, 4294967296, 4)"), data),
         "more than 2^63 values");
  expect("huge.npy", npy_bytes(1, dict("(40000, 40000)"), data), "holds 1600000000 values");
  expect("header.npy", std::string("\x93NUMPY\x02\x00\xf0\xff\xff\xff{'descr'", 18),
         "a header of 4294967280 bytes announced");
  // Still read: one dimension with its trailing comma, and an empty array.
  write_bytes(dir.path("one.npy"), npy_bytes(1, dict("(12,)"), data));
  EXPECT_EQ(demix::read_npy(dir.path("one.npy")).sizes(), (std::vector<int64_t>{12}));
  write_bytes(dir.path("empty.npy"), npy_bytes(1, dict("(0, 5)"), ""));
  EXPECT_EQ(demix::read_npy(dir.path("empty.npy")).numel(), 0);
}

TEST(Npy, WriteRejectsUnsupportedDtypeAndMissingFolder) {
  TempDir dir;
  EXPECT_THROW(demix::write_npy(dir.path("i.npy"), at::ones({2, 2}, at::kInt)), demix::ValueError);
  EXPECT_THROW(demix::write_npy(dir.path("no/such/folder/x.npy"), at::ones({2, 2})),
               demix::IoError);
  EXPECT_TRUE(dir.files().empty());
}

TEST(Npy, ReadsIntegersBothEndiannesses) {
  TempDir dir;
  write_bytes(dir.path("i8.npy"),
              npy_bytes(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (3,), }",
                        big_endian<int64_t>({-5, 7, 1LL << 40})));
  const at::Tensor y = demix::read_npy(dir.path("i8.npy"));
  ASSERT_EQ(y.scalar_type(), at::kLong);
  EXPECT_EQ(y[0].item<int64_t>(), -5);
  EXPECT_EQ(y[2].item<int64_t>(), 1LL << 40);
  write_bytes(dir.path("u1.npy"),
              npy_bytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }",
                        std::string("\xff\x01", 2)));
  EXPECT_EQ(demix::read_npy(dir.path("u1.npy"))[0].item<int64_t>(), 255);
}
