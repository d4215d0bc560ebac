// Every reader against hostile files: valid files written by demix (or byte by byte from the
// standards), then a few hundred deterministic mutations each (truncations, byte flips, header
// fields set to absurd values, shapes whose product overflows, empty files, folders). Each read
// runs in a child process (support/hostile) and must either succeed or throw a demix::Error: never
// another exception, a crash, a sanitizer report, a hang or memory beyond kMemoryBound.
// CTest label: hostile (and properties). Cases print how many reads ended each way;
// DEMIX_HOSTILE_VERBOSE=1 prints every mutation, its outcome and message.

#include <demix/core/errors.hpp>
#include <demix/deblend/pipeline.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/npy.hpp>
#include <demix/io/table.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/sim/dataset.hpp>

#include "core/detail/hash.hpp"
#include "io/detail/tensor_archive.hpp"
#include "support/hostile.hpp"
#include "support/raw_fits.hpp"
#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <sys/stat.h>
#include <typeinfo>

#include <fitsio.h>
#include <zlib.h>

using demix::test::Mutant;
using demix::test::RawHdu;
using demix::test::ReadOutcome;

// A header asking CFITSIO for 10^18 bytes must take the path it takes in production, where malloc
// returns null and CFITSIO reports an error; AddressSanitizer would otherwise stop the program.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

namespace {

// The seeds are a few kB: reading one needs well under a MB. Anything near this bound is a size
// taken from a header without checking it against the file.
constexpr std::size_t kMemoryBound = std::size_t{256} << 20;
constexpr unsigned kSeconds = 30; // generous: sanitized builds on a loaded 2-core machine

struct Reader {
  std::string name;
  std::function<void(const std::string&)> read;
};

const Reader kReadFits{"read_fits", [](const std::string& p) { demix::read_fits(p); }};
const Reader kReadImage{"read_image", [](const std::string& p) {
                          demix::read_image(p, {.non_finite = demix::NonFinitePolicy::Keep});
                        }};
const Reader kListHdus{"list_fits_hdus", [](const std::string& p) { demix::list_fits_hdus(p); }};
const Reader kReadNpy{"read_npy", [](const std::string& p) { demix::read_npy(p); }};
const Reader kReadCsv{"read_csv", [](const std::string& p) { demix::read_csv(p); }};
const Reader kReadPositions{"read_positions",
                            [](const std::string& p) { demix::read_positions(p); }};
const Reader kReadTable{"read_fits_table", [](const std::string& p) { demix::read_fits_table(p); }};
const Reader kReadEcsv{"read_ecsv", [](const std::string& p) { demix::read_ecsv(p); }};
const Reader kReadAnyTable{"read_table", [](const std::string& p) { demix::read_table(p); }};
const Reader kReadPositionsSextractor{"read_positions X_IMAGE origin 1", [](const std::string& p) {
                                        demix::read_positions(
                                            p, {.x = "X_IMAGE", .y = "Y_IMAGE", .origin = 1});
                                      }};
const Reader kReadCoefficients{"read_coefficients_fits",
                               [](const std::string& p) { demix::read_coefficients_fits(p); }};
const Reader kReadDataset{"read_dataset_images",
                          [](const std::string& p) { demix::read_dataset_images(p); }};
const Reader kLoadModel{"MadnessModel::load",
                        [](const std::string& p) { demix::MadnessModel::load(p); }};

/// Reads `path` with every reader: a demix::Error of any is rethrown at the end (so that a missing
/// file reads as TypedError), another exception at once, naming the reader.
void read_with(const std::vector<Reader>& readers, const std::string& path) {
  std::exception_ptr typed;
  for (const Reader& r : readers) {
    try {
      r.read(path);
    } catch (const demix::Error&) {
      if (!typed) typed = std::current_exception();
    } catch (const std::exception& e) {
      throw std::runtime_error(r.name + " threw " + typeid(e).name() + ": " + e.what());
    }
  }
  if (typed) std::rethrow_exception(typed);
}

class Hostile : public ::testing::Test {
protected:
  static void SetUpTestSuite() { at::set_num_threads(1); } // the children need no thread pool

  void TearDown() override {
    std::cout << "[ hostile  ] " << reads_ << " files:";
    for (const auto& [kind, n] : counts_)
      std::cout << " " << n << " " << demix::test::kind_name(kind);
    std::cout << "\n";
  }

  /// The unmutated file must read (a seed that does not is a broken test).
  void expect_valid(const std::string& bytes, const std::string& file_name,
                    const std::vector<Reader>& readers) {
    const std::string path = dir_.path(file_name);
    demix::test::write_file_bytes(path, bytes);
    for (const Reader& r : readers) EXPECT_NO_THROW(r.read(path)) << r.name << " of " << file_name;
  }

  /// Writes each mutant as `file_name` and reads it with every reader.
  void check(const std::vector<Mutant>& mutants, const std::string& file_name,
             const std::vector<Reader>& readers) {
    const std::string path = dir_.path(file_name);
    std::vector<std::function<void()>> reads;
    for (const Mutant& m : mutants)
      reads.emplace_back([&] {
        demix::test::write_file_bytes(path, m.bytes);
        read_with(readers, path);
      });
    const auto outcomes = demix::test::run_isolated(reads, kMemoryBound, kSeconds);
    static const bool verbose = std::getenv("DEMIX_HOSTILE_VERBOSE") != nullptr;
    for (std::size_t i = 0; i < mutants.size(); ++i) {
      const ReadOutcome& o = outcomes[i];
      ++counts_[o.kind];
      ++reads_;
      if (verbose)
        std::cout << file_name << ", " << mutants[i].name << ": " << demix::test::kind_name(o.kind)
                  << " (" << o.rss_growth_kb << " kB): " << o.message.substr(0, 300) << "\n";
      EXPECT_TRUE(o.acceptable()) << file_name << ", " << mutants[i].name << ": "
                                  << demix::test::kind_name(o.kind) << ": " << o.message;
    }
  }

  /// A folder, a missing file and a device given in place of a file: a demix::Error each.
  void check_not_files(const std::string& file_name, const std::vector<Reader>& readers) {
    const std::string folder = dir_.path(file_name + ".d");
    ::mkdir(folder.c_str(), 0700);
    std::vector<std::string> names;
    std::vector<std::function<void()>> reads;
    for (const std::string& p :
         {folder, dir_.path("missing-" + file_name), std::string("/dev/zero")})
      for (const Reader& r : readers) {
        names.push_back(r.name + " of " + p);
        reads.emplace_back([r, p] { r.read(p); });
      }
    const auto outcomes = demix::test::run_isolated(reads, kMemoryBound, kSeconds);
    for (std::size_t i = 0; i < reads.size(); ++i)
      EXPECT_EQ(outcomes[i].kind, ReadOutcome::Kind::TypedError)
          << names[i] << ": " << demix::test::kind_name(outcomes[i].kind) << ": "
          << outcomes[i].message;
  }

  /// Every (key, value) edit of `seed`'s cards, each alone.
  static std::vector<Mutant>
  field_mutants(const std::string& seed,
                const std::vector<std::pair<std::string, std::vector<std::string>>>& fields,
                int occurrence = 0) {
    std::vector<Mutant> out;
    for (const auto& [key, values] : fields)
      for (const auto& v : values) {
        std::string b = demix::test::set_fits_card(seed, key, v, occurrence);
        if (b != seed) out.push_back({key + " = " + v, std::move(b)});
      }
    return out;
  }

  demix::test::TempDir dir_;
  std::map<ReadOutcome::Kind, int> counts_;
  int reads_ = 0;
};

// ---- FITS images --------------------------------------------------------------------------------

std::vector<double> ramp(std::size_t n, double start, double step) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = start + step * static_cast<double>(i);
  return v;
}

std::string raw_fits(const std::vector<RawHdu>& hdus, const demix::test::TempDir& dir) {
  const std::string path = dir.path("seed.fits");
  demix::test::write_raw_fits(path, hdus);
  return demix::test::read_file_bytes(path);
}

const std::vector<std::string> kSizes{"0",
                                      "-5",
                                      "40000",
                                      "2147483647",
                                      "4294967296",
                                      "3037000500",
                                      "9223372036854775807",
                                      "99999999999999999999",
                                      "1.5",
                                      "'text'"};

const std::vector<std::pair<std::string, std::vector<std::string>>> kImageFields{
    {"SIMPLE", {"F", "X"}},
    {"BITPIX", {"7", "0", "-8", "128", "-16", "24", "abc"}},
    {"NAXIS", {"0", "1", "3", "5", "17", "999", "1000", "-1", "2147483648"}},
    {"NAXIS1", kSizes},
    {"NAXIS2", kSizes},
    {"NAXIS3", kSizes},
    {"NAXIS4", kSizes},
    {"BSCALE", {"0", "1E308", "-1E308", "NaN", "'x'"}},
    {"BZERO", {"1E308", "NaN", "9.9E999", "-9223372036854775808"}},
    {"BLANK", {"0", "-99999999999999999999", "'x'"}},
    {"PCOUNT", {"-1", "1000000", "9223372036854775807"}},
    {"GCOUNT", {"0", "2", "9223372036854775807"}},
    {"XTENSION", {"'BINTABLE'", "'A3DTABLE'", "'FOO     '"}},
    {"EXTEND", {"F"}},
};

/// Every axis set to the same value: products that overflow int64 (3037000500^2 > 2^63).
std::vector<Mutant> overflowing_shapes(const std::string& seed, int naxis) {
  std::vector<Mutant> out;
  for (const std::string v : {"3037000500", "2097152", "65536", "4294967296", "2147483647"}) {
    std::string b = seed;
    for (int i = 1; i <= naxis; ++i)
      b = demix::test::set_fits_card(b, "NAXIS" + std::to_string(i), v);
    out.push_back({"every NAXISn = " + v, std::move(b)});
  }
  return out;
}

std::string gzip(const std::string& bytes) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY); // gzip
  std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

/// A tile-compressed image (a BINTABLE with ZIMAGE = T after an empty primary), through CFITSIO.
std::string tile_compressed(int bitpix, int compression, const std::string& path,
                            bool checksum = true) {
  std::remove(path.c_str());
  fitsfile* f = nullptr;
  int status = 0;
  long naxes[2] = {24, 20};
  // Written in the image's own type: CFITSIO converts nothing into a compressed image.
  const auto write = [&](auto zero, int datatype) {
    std::vector<decltype(zero)> v(24 * 20);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<decltype(zero)>(i % 200);
    fits_write_img(f, datatype, 1, static_cast<LONGLONG>(v.size()), v.data(), &status);
  };
  fits_create_file(&f, path.c_str(), &status);
  fits_set_compression_type(f, compression, &status);
  fits_create_img(f, bitpix, 2, naxes, &status);
  switch (bitpix) {
  case 8: write(static_cast<unsigned char>(0), TBYTE); break;
  case 16: write(static_cast<short>(0), TSHORT); break;
  case 32: write(0, TINT); break;
  case -32: write(0.0f, TFLOAT); break;
  default: write(0.0, TDOUBLE); break;
  }
  if (checksum) fits_write_chksum(f, &status); // as fpack does: corrupt tiles are then refused
  fits_close_file(f, &status);
  if (status) throw std::runtime_error("test: CFITSIO status " + std::to_string(status));
  return demix::test::read_file_bytes(path);
}

TEST_F(Hostile, FitsImagesOfEveryBitpix) {
  const std::vector<Reader> readers{kReadFits, kReadImage, kListHdus};
  std::uint64_t seed = 1;
  for (int bitpix : {8, 16, 32, 64, -32, -64}) {
    RawHdu hdu{.bitpix = bitpix, .naxes = {7, 5}, .values = ramp(35, bitpix < 0 ? -1.5 : 1, 3)};
    if (bitpix == 16)
      hdu.cards = {"BSCALE  =                  0.5", "BZERO   =                   3",
                   "BLANK   =                   -7"};
    const std::string valid = raw_fits({hdu}, dir_);
    const std::string name = "bitpix" + std::to_string(bitpix) + ".fits";
    expect_valid(valid, name, readers);
    check(demix::test::byte_mutants(valid, seed++, 2880, 60, {2880}), name, readers);
    check(field_mutants(valid, kImageFields), name, readers);
    check(overflowing_shapes(valid, 2), name, readers);
  }
  check_not_files("image.fits", readers);
}

TEST_F(Hostile, FitsCubesBatchesAndExtensions) {
  const std::vector<Reader> readers{kReadFits, kReadImage, kListHdus, kReadDataset};
  const std::string cube =
      raw_fits({{.bitpix = -32, .naxes = {4, 3, 2}, .values = ramp(24, 0, 1)}}, dir_);
  const std::string batch =
      raw_fits({{.bitpix = -64, .naxes = {3, 3, 2, 2}, .values = ramp(36, 0, 1)}}, dir_);
  const std::string mef = raw_fits(
      {{.bitpix = 8, .naxes = {}},
       {.bitpix = -32, .naxes = {6, 4}, .values = ramp(24, 0, 0.5), .cards = {"EXTNAME = 'SCI'"}},
       {.bitpix = 16, .naxes = {6, 4}, .values = ramp(24, 0, 1), .cards = {"EXTNAME = 'ERR'"}}},
      dir_);
  expect_valid(cube, "cube.fits", {kReadFits, kReadImage, kListHdus});
  expect_valid(batch, "batch.fits", {kReadFits, kListHdus});
  expect_valid(mef, "mef.fits", {kReadFits, kReadImage, kListHdus});
  check(demix::test::byte_mutants(cube, 11, 2880, 50, {2880}), "cube.fits", readers);
  check(field_mutants(cube, kImageFields), "cube.fits", readers);
  check(overflowing_shapes(cube, 3), "cube.fits", readers);
  check(demix::test::byte_mutants(batch, 12, 2880, 50, {2880}), "batch.fits", readers);
  check(overflowing_shapes(batch, 4), "batch.fits", readers);
  check(demix::test::byte_mutants(mef, 13, mef.size(), 80, {2880, 5760, 8640, 11520}), "mef.fits",
        readers);
  for (int occurrence : {1, 2}) // the extensions' cards
    check(field_mutants(mef, kImageFields, occurrence), "mef.fits", readers);
  const std::vector<Reader> selected{
      {"read_fits [SCI]", [](const std::string& p) { demix::read_fits(p + "[SCI]"); }},
      {"read_fits [2]", [](const std::string& p) { demix::read_fits(p + "[2]"); }}};
  check(field_mutants(mef, kImageFields, 1), "sel.fits", selected);
}

TEST_F(Hostile, CompressedFits) {
  const std::vector<Reader> readers{kReadFits, kReadImage, kListHdus};
  // gzip: the compressed bytes mutated, and mutated FITS files compressed.
  const std::string plain =
      raw_fits({{.bitpix = -32, .naxes = {9, 7}, .values = ramp(63, -1, 0.25)}}, dir_);
  const std::string gz = gzip(plain);
  expect_valid(gz, "map.fits.gz", readers);
  check(demix::test::byte_mutants(gz, 21, gz.size(), 60), "map.fits.gz", readers);
  std::vector<Mutant> inner = field_mutants(plain, kImageFields);
  for (Mutant& m : overflowing_shapes(plain, 2)) inner.push_back(std::move(m));
  for (Mutant& m : demix::test::byte_mutants(plain, 22, 2880, 30, {2880})) {
    if (!m.bytes.empty()) inner.push_back(std::move(m));
  }
  for (Mutant& m : inner) m.bytes = gzip(m.bytes), m.name = "gzip of " + m.name;
  check(inner, "inner.fits.gz", readers);

  // Tile compression (CFITSIO's; fpack writes the same), with checksums as fpack writes them,
  // and without: then corrupt tile data can crash CFITSIO 4.2's RICE and PLIO decoders (found by
  // this test under ASan: out-of-bounds reads and writes in fits_rdecomp, fffr8r8), so demix
  // decompresses unverified tiles in a child process, whose crash is a FormatError.
  const std::vector<std::pair<std::string, std::vector<std::string>>> tile_fields{
      {"ZBITPIX", {"7", "0", "-8", "64"}},
      {"ZNAXIS", {"0", "1", "3", "999", "-1"}},
      {"ZNAXIS1", kSizes},
      {"ZNAXIS2", kSizes},
      {"ZTILE1", {"0", "-1", "1000", "2147483647"}},
      {"ZTILE2", {"0", "-1", "1000", "2147483647"}},
      {"ZCMPTYPE",
       {"'BOGUS'", "'GZIP_2'", "'HCOMPRESS_1'", "'PLIO_1'", "'RICE_1'", "'NOCOMPRESS'",
        "'RICE_ONE'"}},
      {"ZVAL1", {"0", "-1", "99999", "'x'"}},
      {"ZVAL2", {"0", "99", "-1"}},
      {"ZQUANTIZ", {"'BOGUS'", "'SUBTRACTIVE_DITHER_2'"}},
      {"ZDITHER0", {"0", "-1", "99999"}},
      {"NAXIS1", {"0", "7", "9223372036854775807"}},
      {"NAXIS2", {"0", "1", "2147483647", "9223372036854775807"}},
      {"PCOUNT", {"0", "-1", "9223372036854775807"}},
      {"THEAP", {"0", "-1", "9223372036854775807"}},
      {"TFIELDS", {"0", "999"}},
      {"TFORM1", {"'1PB(99999999)'", "'1QB(9)'", "'1D'", "'0PB'", "'1PJ(1)'"}},
      {"ZIMAGE", {"F"}},
  };
  int seed = 30;
  for (const auto& [bitpix, compression, name] :
       {std::tuple{16, RICE_1, "rice16"}, std::tuple{-32, GZIP_1, "gzip-32"},
        std::tuple{32, HCOMPRESS_1, "hcompress32"}, std::tuple{8, PLIO_1, "plio8"},
        std::tuple{-64, GZIP_2, "gzip2-64"}}) {
    const std::string file = std::string(name) + ".fits";
    const std::string valid = tile_compressed(bitpix, compression, dir_.path("seed-" + file));
    expect_valid(valid, file, readers);
    check(demix::test::byte_mutants(valid, seed++, valid.size(), 70, {2880, 5760}), file, readers);
    check(field_mutants(valid, tile_fields), file, readers);
    const std::string bare = "no-checksum-" + file;
    const std::string unverified = tile_compressed(bitpix, compression, dir_.path(bare), false);
    expect_valid(unverified, bare, readers);
    check(demix::test::byte_mutants(unverified, seed++, unverified.size(), 70, {2880, 5760}), bare,
          readers);
  }
}

// ---- npy ----------------------------------------------------------------------------------------

/// An npy file built from its parts: any version, any header text, any payload.
std::string npy(int major, const std::string& dict, const std::string& payload,
                long long header_len = -1) {
  std::string header = dict;
  const std::size_t prelude = 6 + 2 + (major == 1 ? 2 : 4);
  while ((prelude + header.size() + 1) % 64) header += ' ';
  header += '\n';
  const auto len = static_cast<std::uint64_t>(header_len >= 0 ? header_len : header.size());
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
  return out + header + payload;
}

std::string dict(const std::string& descr, const std::string& fortran, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

TEST_F(Hostile, NpyOfEveryDtypeAndVersion) {
  const std::vector<Reader> readers{kReadNpy, kReadImage};
  struct Seed {
    std::string descr;
    std::size_t item;
    int major;
    std::string fortran, shape;
    std::size_t count;
  };
  const Seed seeds[] = {
      {"<f4", 4, 1, "False", "(3, 4)", 12},   {">f8", 8, 1, "False", "(2, 3)", 6},
      {"<c8", 8, 2, "False", "(2, 2)", 4},    {">c16", 16, 1, "True", "(2, 3)", 6},
      {"|i1", 1, 1, "False", "(4, 5)", 20},   {"|u1", 1, 3, "False", "(4, 5)", 20},
      {"<i2", 2, 1, "True", "(3, 2, 2)", 12}, {">i4", 4, 2, "False", "(5,)", 5},
      {"<i8", 8, 3, "False", "(2, 2)", 4},    {"<f8", 8, 1, "False", "()", 1},
      {"<f4", 4, 1, "False", "(0, 3)", 0},
  };
  std::uint64_t rng = 40;
  for (const Seed& s : seeds) {
    std::string payload(s.item * s.count, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 % 13);
    const std::string valid = npy(s.major, dict(s.descr, s.fortran, s.shape), payload);
    const std::string name = "a" + std::to_string(rng) + ".npy";
    expect_valid(valid, name, {kReadNpy});
    check(demix::test::byte_mutants(valid, rng++, 128, 60, {10, 12, 64, 128}), name, readers);
  }

  // Header fields set to absurd values, each in a file of 4 float64 values.
  std::vector<Mutant> mutants;
  const std::string four(32, '\1');
  for (
      const std::string shape :
      {"(9223372036854775807,)",
       "(9223372036854775807, 2)",
       "(3037000500, 3037000500)",
       "(4294967296, 4294967296, 4294967296)",
       "(-1, 4)",
       "(4, -1)",
       "(99999999999999999999,)",
       "(999999999999999999,)",
       "(1e3,)",
       "( , )",
       "(,)",
       "(4, 4",
       "4, 4)",
       "[4, 4]",
       "(0x4,)",
       "(0, 9223372036854775807)",
       "(2, 0, 9223372036854775807)",
       "(4,, 1)",
       "(+4,)",
       "(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
       "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4)"})
    for (int major : {1, 2})
      mutants.push_back({"shape " + shape + " v" + std::to_string(major),
                         npy(major, dict("<f8", "False", shape), four)});
  for (const std::string descr : {"<f2", "<u4", "|b1", "|O", "<V8", "<U8", "f8", "", "<c32", "<i16",
                                  "<f8'", "<<f8", "~f8", "|f8", "=f8", "<f4\\x00"})
    mutants.push_back({"descr " + descr, npy(1, dict(descr, "False", "(4,)"), four)});
  for (const std::string fortran : {"Tru", "maybe", "1", "True", "None"})
    mutants.push_back({"fortran_order " + fortran, npy(1, dict("<f8", fortran, "(2, 2)"), four)});
  const char nul_descr[] = "{'descr': '<f8\0', 'fortran_order': False, 'shape': (4,), }";
  for (const std::string& text : std::vector<std::string>{
           "", "{}", "{'descr': '<f8'}", "{'shape': (4,), 'fortran_order': False}",
           "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (4,), }",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (4,)", "not a dict at all",
           "{'descr': '<f8', 'fortran_order': False, 'shape': 4, }",
           "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (4,), }",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'shape': "
           "(9223372036854775807,)}",
           std::string(nul_descr, sizeof nul_descr - 1)})
    mutants.push_back({"header " + text.substr(0, 40), npy(1, text, four)});
  for (long long len : {0LL, 1LL, 10LL, 65535LL})
    mutants.push_back({"v1 header length " + std::to_string(len),
                       npy(1, dict("<f8", "False", "(4,)"), four, len)});
  for (long long len : {0LL, 65536LL, 2147483647LL, 4294967295LL})
    for (int major : {2, 3})
      mutants.push_back({"v" + std::to_string(major) + " header length " + std::to_string(len),
                         npy(major, dict("<f8", "False", "(4,)"), four, len)});
  for (int major : {0, 4, 255}) {
    std::string b = npy(1, dict("<f8", "False", "(4,)"), four);
    b[6] = static_cast<char>(major);
    mutants.push_back({"version " + std::to_string(major), b});
  }
  // Megabytes of blanks where a parser might recurse or scan once per character.
  mutants.push_back(
      {"a megabyte of blanks after 'descr':", npy(2,
                                                  "{'descr':" + std::string(1 << 20, ' ') +
                                                      "'<f8', 'fortran_order': False, "
                                                      "'shape': (4,), }",
                                                  four)});
  mutants.push_back({"a megabyte of blanks in the shape",
                     npy(2, dict("<f8", "False", "(" + std::string(1 << 20, ' ') + "4,)"), four)});
  mutants.push_back({"payload short by 1", npy(1, dict("<f8", "False", "(4,)"), four.substr(1))});
  mutants.push_back({"magic only", std::string("\x93NUMPY", 6)});
  check(mutants, "fields.npy", readers);
  check_not_files("map.npy", readers);
}

// ---- CSV catalogues -----------------------------------------------------------------------------

TEST_F(Hostile, CsvCatalogues) {
  const std::vector<Reader> readers{kReadCsv, kReadAnyTable, kReadPositions};
  demix::Table t;
  t.add("id", at::arange(4, at::kLong));
  t.add("x", at::tensor({1.5, 2.25, 3.0, -4.0}, at::kDouble), "pix");
  t.add("y", at::tensor({0.5, 9.0, 1e-300, 7.0}, at::kDouble), "pix");
  t.add_text("name", {"a,b", "q\"uote", "plain", "line\nbreak"});
  t.add("flux", at::ones({4, 2}, at::kDouble));
  demix::write_csv(dir_.path("seed.csv"), t);
  const std::string valid = demix::test::read_file_bytes(dir_.path("seed.csv"));
  expect_valid(valid, "cat.csv", readers);
  check(demix::test::byte_mutants(valid, 50, valid.size(), 150), "cat.csv", readers);

  const std::string positions = "x,y\n10.5,12\n3,4\n";
  expect_valid(positions, "pos.csv", readers);
  check(demix::test::byte_mutants(positions, 51, positions.size(), 80), "pos.csv", readers);

  std::vector<Mutant> mutants;
  for (const std::string text : {"\n\n",
                                 "x,y",
                                 "x,y\n",
                                 "x,y\n1",
                                 "x,y\n1,2,3",
                                 "\"x,y\n1,2",
                                 "x,y\n\"1,2\n",
                                 "x,x\n1,2",
                                 ",\n1,2",
                                 "x,\n1,2",
                                 "x,y\n1e999999,2",
                                 "x,y\nnan,2",
                                 "x,y\ninf,-inf",
                                 "x,y\n0x10,2",
                                 "\xEF\xBB\xBFx,y\n1,2",
                                 "x,y\r\n1,2\r\n",
                                 "x;y\n1;2",
                                 "x,y\n,\n",
                                 "x,y\n-0,+0\n",
                                 "x,y\n99999999999999999999,1\n",
                                 "x,y\n\"\"\"\",1\n",
                                 "\"\"\"\n",
                                 "x,y\n1,\"2\n3,4\n"})
    mutants.push_back({"text " + text.substr(0, 30), text});
  mutants.push_back({"NUL in the header", std::string("x\0,y\n1,2\n", 9)});
  mutants.push_back({"NUL in a value", std::string("x,y\n1\0,2\n", 9)});
  mutants.push_back({"100000 columns", std::string(100000, ',') + "\n" + std::string(100000, ',')});
  std::string rows = "x,y\n";
  for (int i = 0; i < 20000; ++i) rows += std::to_string(i) + ",1\n";
  mutants.push_back({"20000 rows", rows});
  mutants.push_back({"a 1 MB quoted field", "x,y\n\"" + std::string(1 << 20, 'a')});
  check(mutants, "text.csv", readers);
  check_not_files("cat.csv", readers);
}

TEST_F(Hostile, EcsvCatalogues) {
  const std::vector<Reader> readers{kReadEcsv, kReadAnyTable, kReadPositions,
                                    kReadPositionsSextractor};
  demix::Table t;
  t.add("X_IMAGE", at::tensor({1.5, 2.25, 3.0}, at::kDouble), "pix", "column, 1-based");
  t.add("Y_IMAGE", at::tensor({0.5, 9.0, 7.0}, at::kDouble), "pix");
  t.add("x", at::tensor({0.5, 1.25, 2.0}, at::kDouble));
  t.add("y", at::tensor({0.5, 8.0, 6.0}, at::kDouble));
  t.add_text("name", {"a,b", "q\"uote", "plain"}, "a name: with 'quotes'");
  t.add("flux", at::ones({3, 2}, at::kDouble), "electron");
  t.meta.emplace_back("ORIGIN", "demix test");
  demix::write_ecsv(dir_.path("seed.ecsv"), t);
  const std::string valid = demix::test::read_file_bytes(dir_.path("seed.ecsv"));
  expect_valid(valid, "cat.ecsv", readers);
  const std::size_t header = valid.find("\nX_IMAGE");
  check(demix::test::byte_mutants(valid, 55, header, 200), "cat.ecsv", readers);
  std::vector<Mutant> mutants;
  for (const std::string text :
       {"# %ECSV", "# %ECSV 1.0\n", "# %ECSV 1.0\n# ---\n# delimiter: ';'\nx;y\n1;2\n",
        "# %ECSV 1.0\n# ---\n# delimiter: ''\nx,y\n1,2\n",
        "# %ECSV 1.0\n# ---\n# delimiter:\nx,y\n1,2\n", "# %ECSV 1.0\n# - {name: \n x,y\n1,2\n",
        "# %ECSV 1.0\n# - {name: x, unit: \nx,y\n1,2\n", "# %ECSV 1.0\n# - {name: 'x\nx,y\n1,2\n",
        "# %ECSV 1.0\n# - {\nx y\n1 2\n", "# %ECSV 1.0\n# ---\n# delimiter: ' '\nx y\n1  2\n3\n",
        "# %ECSV 1.0\n# ---\n# delimiter: ' '\nx y\n\"1 2\n"})
    mutants.push_back({"text " + text.substr(0, 40), text});
  mutants.push_back({"a megabyte of header comment",
                     "# %ECSV 1.0\n#" + std::string(1 << 20, ' ') + "\nx,y\n1,2\n"});
  mutants.push_back({"a megabyte of YAML name",
                     "# %ECSV 1.0\n# - {name: " + std::string(1 << 20, 'n') + "}\nx,y\n1,2\n"});
  check(mutants, "text.ecsv", readers);
  check_not_files("cat.ecsv", readers);
}

// ---- FITS tables (catalogues, statistics) -------------------------------------------------------

TEST_F(Hostile, FitsTablesAndCoefficients) {
  demix::Table t;
  t.add("ID", at::arange(5, at::kLong));
  t.add("X", at::linspace(0, 1, 5, at::kDouble), "pix");
  t.add_text("NAME", {"a", "bb", "ccc", "", "e"});
  t.add("FLUX", at::ones({5, 3}, at::kDouble), "electron");
  demix::write_fits_table(dir_.path("seed-cat.fits"), t, "CAT");
  const std::string catalogue = demix::test::read_file_bytes(dir_.path("seed-cat.fits"));

  demix::Coefficients c;
  c.values = at::randn({2, 6}, at::kDouble);
  c.classes = {"S11", "C01"};
  c.class_id = at::tensor({0, 0, 0, 1, 1, 1}, at::kLong);
  c.label_names = {"j1", "t1"};
  c.labels = at::arange(12, at::kLong).view({6, 2});
  demix::write_coefficients_fits(dir_.path("seed-coeffs.fits"), c);
  const std::string coefficients = demix::test::read_file_bytes(dir_.path("seed-coeffs.fits"));

  const std::vector<std::pair<std::string, std::vector<std::string>>> fields{
      {"NAXIS1", {"0", "1", "8", "9223372036854775807", "-1"}},
      {"NAXIS2", {"-1", "0", "2147483647", "1099511627776", "9223372036854775807"}},
      {"TFIELDS", {"0", "-1", "2", "999", "1000"}},
      {"TFORM1",
       {"'999999999D'", "'0D'", "'PD(5)'", "'QD(5)'", "'1X'", "'1C'", "'A'", "'2147483647A'", "'K'",
        "'-1D'", "'1PA(999999999)'", "'8A'"}},
      {"TFORM3", {"'999999999D'", "'0A'", "'2147483647A'", "'1PA(5)'", "'1M'"}},
      {"TFORM4", {"'999999999D'", "'0D'", "'3K'", "'1QD(999999999)'"}},
      {"TTYPE1", {"''", "'REAL'", "'X'"}},
      {"TDIM4", {"'(2,2)'", "'(999999999,999999999)'", "'(-1)'"}},
      {"TSCAL1", {"0", "NaN"}},
      {"TZERO1", {"1E308"}},
      {"PCOUNT", {"-1", "99", "9223372036854775807"}},
      {"THEAP", {"0", "-1", "9223372036854775807"}},
      {"NCLASS", {"-1", "0", "1", "999999999", "9223372036854775807"}},
      {"CLASS1", {"''", "'C01'"}},
      {"NMAPS", {"0", "-1", "999999999"}},
      {"CPLXVAL", {"'x'", "T"}},
  };
  const std::vector<Reader> readers{kReadTable, kReadCoefficients, kListHdus, kReadAnyTable,
                                    kReadPositions};
  expect_valid(catalogue, "cat.fits", {kReadTable, kListHdus});
  expect_valid(coefficients, "coeffs.fits", {kReadTable, kReadCoefficients, kListHdus});
  check(demix::test::byte_mutants(catalogue, 60, catalogue.size(), 120, {2880, 5760, 8640}),
        "cat.fits", readers);
  check(demix::test::byte_mutants(coefficients, 61, coefficients.size(), 120, {2880, 5760, 8640}),
        "coeffs.fits", readers);
  check(field_mutants(catalogue, fields), "cat.fits", readers);
  check(field_mutants(coefficients, fields), "coeffs.fits", readers);
  // Columns renamed into each other's roles: CLASS on numbers, REAL on text.
  std::vector<Mutant> swapped;
  for (const auto& [a, b] : {std::pair{"CLASS", "J1"}, std::pair{"CLASS", "REAL"},
                             std::pair{"REAL", "J1"}, std::pair{"IMAG", "CLASS"}}) {
    std::string bytes = coefficients;
    // The TTYPEn card whose value is `from` (padded with blanks) set to `to`.
    const auto rename = [&](const std::string& from, const std::string& to) {
      const std::string card = "= '" + from;
      for (std::size_t i = 0; i + 80 <= bytes.size(); i += 80)
        if (bytes.compare(i, 5, "TTYPE") == 0 && bytes.compare(i + 8, card.size(), card) == 0 &&
            (bytes[i + 8 + card.size()] == '\'' || bytes[i + 8 + card.size()] == ' '))
          return demix::test::set_fits_card(bytes, bytes.substr(i, 8), "'" + to + "'");
      return bytes;
    };
    bytes = rename(a, "TMPNAME");
    bytes = rename(b, a);
    bytes = rename("TMPNAME", b);
    EXPECT_NE(bytes, coefficients) << a << " and " << b << " not found";
    swapped.push_back({std::string(a) + " and " + b + " swapped", bytes});
  }
  check(swapped, "coeffs.fits", readers);
  check_not_files("cat.fits", readers);
}

TEST_F(Hostile, SimulatedDatasets) {
  // The layout of `demix simulate isolated` (sim/dataset.hpp), small: STAMPS (N, B, S, S) with
  // DATASET, NBANDS, BANDn, SIGMAn, then PSF and TRUTH.
  demix::FitsHeader header;
  header.set("DATASET", std::string_view("isolated"));
  header.set("NBANDS", 2LL);
  header.set("BAND1", std::string_view("g"));
  header.set("BAND2", std::string_view("r"));
  header.set("SIGMA1", 3.0);
  header.set("SIGMA2", 4.0);
  demix::Table truth;
  truth.add("flux_g", at::tensor({1.0, 2.0}, at::kDouble));
  {
    demix::FitsWriter w(dir_.path("seed-set.fits"));
    w.add_empty_primary({});
    w.add_image("STAMPS", at::rand({2, 2, 5, 5}, at::kFloat), header);
    w.add_image("PSF", at::rand({2, 5, 5}, at::kFloat));
    w.add_table("TRUTH", truth);
    w.commit();
  }
  const std::string valid = demix::test::read_file_bytes(dir_.path("seed-set.fits"));
  const Reader complete{"read_dataset", [](const std::string& p) { demix::read_dataset(p); }};
  const std::vector<Reader> readers{complete, kReadDataset};
  expect_valid(valid, "set.fits", readers);
  check(demix::test::byte_mutants(valid, 80, valid.size(), 120, {2880, 5760, 8640, 11520}),
        "set.fits", readers);
  check(field_mutants(valid, {{"NBANDS", {"NaN", "1E308", "-1", "3", "'x'"}},
                              {"SIGMA1", {"0", "-1", "NaN", "1E999", "'x'"}},
                              {"SIGMA2", {"'x'"}},
                              {"BAND2", {"''", "1"}},
                              {"DATASET", {"'blends'", "''", "1"}},
                              {"EXTNAME", {"'BLENDS'", "'PSF'", "'TRUTH'", "''"}},
                              {"NAXIS4", {"0", "-1", "9223372036854775807"}}}),
        "set.fits", readers);
  for (int occurrence : {1, 2, 3})
    check(field_mutants(valid, kImageFields, occurrence), "set.fits", readers);
}

// ---- Model files --------------------------------------------------------------------------------

demix::MadnessModel small_model() {
  demix::GalaxyVae vae({.bands = 3,
                        .stamp_size = 11,
                        .latent_dim = 5,
                        .encoder_channels = {4, 6},
                        .decoder_channels = {6, 4, 4},
                        .dense_units = 12,
                        .band_scales = {10, 20, 30}},
                       3);
  demix::MadnessModel model(
      std::move(vae),
      {.band_names = {"g", "r", "i"}, .noise_sigmas = {10, 20, 30}, .provenance = {"a test"}});
  model.set_flow(demix::LatentFlow({.dim = 5, .blocks = 2, .hidden = {8}}, 4));
  return model;
}

/// The archive's trailing FNV-1a hash recomputed, so that a mutation reaches the parser instead of
/// being caught by the checksum (as a deliberately crafted file would).
std::string resealed(std::string bytes) {
  if (bytes.size() < 8) return bytes;
  const std::uint64_t h = demix::detail::fnv1a(bytes.data(), bytes.size() - 8);
  std::memcpy(bytes.data() + bytes.size() - 8, &h, 8);
  return bytes;
}

TEST_F(Hostile, ModelFiles) {
  using demix::detail::TensorArchive;
  const std::vector<Reader> readers{kLoadModel};
  small_model().save(dir_.path("seed.dmx"));
  const std::string valid = demix::test::read_file_bytes(dir_.path("seed.dmx"));
  expect_valid(valid, "model.dmx", readers);
  auto mutants = demix::test::byte_mutants(valid, 70, valid.size(), 120);
  check(mutants, "model.dmx", readers);
  for (Mutant& m : mutants) m.bytes = resealed(m.bytes), m.name = "resealed, " + m.name;
  check(mutants, "model.dmx", readers);

  // Entries replaced by absurd values, through the archive itself (checksums valid).
  const TensorArchive seed = TensorArchive::load(dir_.path("seed.dmx"));
  const auto edited = [&](const std::string& what, const std::function<void(TensorArchive&)>& f) {
    TensorArchive a = seed;
    f(a);
    a.save(dir_.path("edited.dmx"));
    return Mutant{what, demix::test::read_file_bytes(dir_.path("edited.dmx"))};
  };
  const std::int64_t huge[] = {0,
                               -1,
                               1,
                               2,
                               3,
                               4,
                               1000001,
                               2147483647,
                               std::int64_t{1} << 40,
                               std::numeric_limits<std::int64_t>::max(),
                               std::numeric_limits<std::int64_t>::min()};
  std::vector<Mutant> semantic;
  for (const std::string key :
       {"vae.option.bands", "vae.option.stamp_size", "vae.option.latent_dim",
        "vae.option.dense_units", "flow.option.dim", "flow.option.blocks", "flow.present",
        "format_version"})
    for (std::int64_t v : huge)
      semantic.push_back(
          edited(key + " = " + std::to_string(v), [&](TensorArchive& a) { a.put_int(key, v); }));
  const std::vector<std::vector<std::int64_t>> lists{
      {},
      {0},
      {-4},
      {std::int64_t{1} << 40},
      {1000000, 1000000},
      {4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46},
      {3037000500, 3037000500}};
  for (const std::string key :
       {"vae.option.encoder_channels", "vae.option.decoder_channels", "flow.option.hidden"})
    for (const auto& list : lists)
      semantic.push_back(
          edited(key + " = list of " + std::to_string(list.size()),
                 [&](TensorArchive& a) { a.put(key, at::tensor(list, at::kLong)); }));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const std::string key : {"vae.option.band_scales", "meta.noise_sigmas"})
    for (const std::vector<double>& list : std::vector<std::vector<double>>{
             {}, {nan, nan, nan}, {-1, 1, 1}, {1, 1, 1, 1, 1}, {1e308, 1e308, INFINITY}})
      semantic.push_back(
          edited(key + " = list of " + std::to_string(list.size()),
                 [&](TensorArchive& a) { a.put(key, at::tensor(list, at::kDouble)); }));
  for (double v : {0.0, -1.0, nan, std::numeric_limits<double>::infinity(), 1e308})
    semantic.push_back(
        edited("flow.option.max_log_scale = " + std::to_string(v),
               [&](TensorArchive& a) { a.put_double("flow.option.max_log_scale", v); }));
  for (const std::string& text :
       std::vector<std::string>{"", "\n\n\n", "a\nb\nc\nd", std::string(1 << 16, 'x')})
    semantic.push_back(edited("band names '" + text.substr(0, 10) + "'",
                              [&](TensorArchive& a) { a.put_text("meta.band_names", text); }));
  semantic.push_back(edited("format 'x'", [](TensorArchive& a) { a.put_text("format", "x"); }));
  for (const std::string& name : seed.names()) { // each entry as text, as a float, reshaped
    if (name == "format" || name.rfind("meta.", 0) == 0) continue;
    semantic.push_back(
        edited(name + " as text", [&](TensorArchive& a) { a.put_text(name, "nonsense"); }));
    const at::Tensor t = seed.tensor(name);
    semantic.push_back(
        edited(name + " as float32", [&](TensorArchive& a) { a.put(name, t.to(at::kFloat)); }));
    semantic.push_back(edited(name + " flattened plus one", [&](TensorArchive& a) {
      a.put(name, at::cat({t.flatten(), t.flatten().slice(0, 0, 1)}));
    }));
  }
  check(semantic, "semantic.dmx", readers);
  check_not_files("model.dmx", readers);
}

} // namespace
