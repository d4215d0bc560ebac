// The only file that sees fitsio.h: every CFITSIO status ends up in throw_fits().

#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>

#include "io/detail/atomic_file.hpp"
#include "io/detail/files.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>

#include <fitsio.h>
#include <unistd.h>
#include <zlib.h>

namespace demix {

namespace {

/// Turns a CFITSIO status (and its message stack) into a typed error naming `what`.
[[noreturn]] void throw_fits(int status, const std::string& what) {
  char text[FLEN_STATUS] = {0};
  fits_get_errstatus(status, text);
  std::string detail = text;
  char msg[FLEN_ERRMSG];
  std::string stack;
  while (fits_read_errmsg(msg)) {
    if (!stack.empty()) stack += "; ";
    stack += msg;
  }
  if (!stack.empty()) detail += " [" + stack + "]";
  switch (status) {
  case FILE_NOT_OPENED:
  case FILE_NOT_CREATED:
  case WRITE_ERROR: throw IoError(what + ": " + detail);
  case END_OF_FILE:
  case READ_ERROR: throw FormatError(what + ": the file is truncated or corrupt (" + detail + ")");
  default: throw FormatError(what + ": " + detail);
  }
}

/// Owns an open fitsfile and closes it on every path.
class FitsFile {
public:
  FitsFile() = default;
  ~FitsFile() { close_quietly(); }
  FitsFile(const FitsFile&) = delete;
  FitsFile& operator=(const FitsFile&) = delete;
  fitsfile** out() { return &ptr_; }
  fitsfile* get() const { return ptr_; }
  /// Closes and reports errors (flushing a written file can fail).
  void close(const std::string& what) {
    int status = 0;
    if (ptr_ && fits_close_file(ptr_, &status)) {
      ptr_ = nullptr;
      throw_fits(status, what);
    }
    ptr_ = nullptr;
  }

private:
  void close_quietly() {
    int status = 0;
    if (ptr_) fits_close_file(ptr_, &status);
    ptr_ = nullptr;
  }
  fitsfile* ptr_ = nullptr;
};

std::string pad_card(std::string_view card) {
  std::string c(card.substr(0, std::min<std::size_t>(card.size(), 80)));
  c.resize(80, ' ');
  return c;
}

std::string card_keyword(const std::string& card) {
  char name[FLEN_KEYWORD] = {0};
  int length = 0, status = 0;
  std::string copy = card;
  if (fits_get_keyname(copy.data(), name, &length, &status)) return {};
  return name;
}

bool accumulates(const std::string& key) {
  return key.empty() || key == "COMMENT" || key == "HISTORY" || key == "CONTINUE";
}

/// Keywords the writer derives from the data itself, never copied from a source header.
bool is_structural(const std::string& card) {
  std::string copy = card;
  switch (fits_get_keyclass(copy.data())) {
  case TYP_STRUC_KEY:
  case TYP_CMPRS_KEY:
  case TYP_SCAL_KEY:
  case TYP_NULL_KEY:
  case TYP_HDUID_KEY:
  case TYP_CKSUM_KEY: return true;
  default: return card.compare(0, 8, "END     ") == 0;
  }
}

std::string make_card(std::string_view key, const std::string& value, std::string_view comment) {
  char card[FLEN_CARD] = {0};
  int status = 0;
  std::string k(key), v(value), c(comment);
  if (fits_make_key(k.c_str(), v.data(), c.c_str(), card, &status))
    throw ValueError("invalid FITS keyword '" + k + "' or value '" + v + "'");
  return card;
}

/// float32 holds the data exactly: small integers (after an integer BZERO), or unscaled floats.
/// Everything else, scaled integers included, is read as float64.
bool fits_in_float32(int bitpix, int equivtype, bool scaled) {
  return equivtype == BYTE_IMG || equivtype == SBYTE_IMG || equivtype == SHORT_IMG ||
         equivtype == USHORT_IMG || (bitpix == FLOAT_IMG && !scaled);
}

std::string describe_spec(const std::string& spec) { return "cannot read FITS '" + spec + "'"; }

/// The logical size of the open file: the inflated size of a gzip file (CFITSIO inflates it in
/// memory), else the file's.
std::uint64_t logical_size(fitsfile* f) {
  return static_cast<std::uint64_t>(std::max<LONGLONG>(f->Fptr->logfilesize, 0));
}

std::optional<long long> integer_key(fitsfile* f, const char* key) {
  long long v = 0;
  int status = 0;
  if (fits_read_key(f, TLONGLONG, key, &v, nullptr, &status)) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  return v;
}

/// FormatError naming `where` unless the current HDU's data lie within the file: `pixels` values
/// of `bytes` each for an image; for a tile-compressed image, its table (and heap), whose rows
/// must be as many as its tiles (so that the image's size is backed by as many stored tiles).
/// Returns true for a tile-compressed image whose tiles no checksum vouches for: its pixels are
/// then decompressed in a child process (read_pixels_isolated).
bool check_data_fits(fitsfile* f, const std::string& where, std::uint64_t pixels,
                     std::uint64_t bytes) {
  int status = 0;
  LONGLONG head = 0, data_start = 0, data_end = 0;
  if (fits_get_hduaddrll(f, &head, &data_start, &data_end, &status)) {
    fits_clear_errmsg();
    return false; // CFITSIO reports it on reading
  }
  const std::uint64_t size = logical_size(f);
  const auto start = static_cast<std::uint64_t>(std::max<LONGLONG>(data_start, 0));
  if (fits_is_compressed_image(f, &status)) {
    const long long rows = integer_key(f, "NAXIS2").value_or(-1);
    std::uint64_t tiles = 1;
    for (int i = 1; i <= 9; ++i) {
      const std::string n = std::to_string(i);
      const auto length = integer_key(f, ("ZNAXIS" + n).c_str());
      if (!length) break;
      const long long tile = integer_key(f, ("ZTILE" + n).c_str()).value_or(i == 1 ? *length : 1);
      if (*length < 1 || tile < 1)
        throw FormatError(where + ": ZNAXIS" + n + " = " + std::to_string(*length) + ", ZTILE" + n +
                          " = " + std::to_string(tile) + " (both must be >= 1)");
      const auto count = static_cast<std::uint64_t>((*length - 1) / tile + 1);
      tiles = tiles > (1ull << 62) / count ? (1ull << 62) : tiles * count;
    }
    if (rows < 0 || tiles != static_cast<std::uint64_t>(rows))
      throw FormatError(where + ": its ZNAXISn and ZTILEn make " + std::to_string(tiles) +
                        " tiles, its compressed table has " + std::to_string(rows) +
                        " rows (one per tile)");
    if (static_cast<std::uint64_t>(data_end) > size)
      throw FormatError(where + " is truncated: its compressed data end at byte " +
                        std::to_string(data_end) + ", the file has " + std::to_string(size) +
                        " bytes");
    // Each tile's descriptor (length, heap offset) must lie within the heap: CFITSIO allocates
    // the length a tile claims before reading it (gigabytes for a corrupt descriptor).
    const long long heap = integer_key(f, "PCOUNT").value_or(0);
    int columns = 0;
    fits_get_num_cols(f, &columns, &status);
    for (int col = 1; col <= columns && status == 0; ++col) {
      int typecode = 0;
      long repeat = 0, width = 0;
      if (fits_get_coltype(f, col, &typecode, &repeat, &width, &status) || typecode >= 0) continue;
      for (long long row = 1; row <= rows; ++row) {
        LONGLONG length = 0, offset = 0;
        if (fits_read_descriptll(f, col, row, &length, &offset, &status)) break;
        if (length < 0 || offset < 0 || length > heap || offset > heap ||
            offset + length * std::max<long>(width, 1) > heap)
          throw FormatError(where + ": tile " + std::to_string(row) + " claims " +
                            std::to_string(length) + " values at heap byte " +
                            std::to_string(offset) + ", beyond its " + std::to_string(heap) +
                            "-byte heap (the file is corrupt)");
      }
    }
    status = 0;
    fits_clear_errmsg();
    // CFITSIO's decompressors (RICE, PLIO) read and write out of bounds on corrupt tiles: when
    // the file has a DATASUM (fpack and demix write one), corrupt tiles are refused before;
    // without one, the tiles are decompressed in a child process.
    int data_ok = 0, hdu_ok = 0;
    if (fits_verify_chksum(f, &data_ok, &hdu_ok, &status) == 0 && data_ok == -1)
      throw FormatError(where + ": its compressed data do not match their DATASUM checksum "
                                "(the file is corrupt)");
    fits_clear_errmsg();
    return data_ok != 1;
  }
  if (start > size || pixels > (size - start) / std::max<std::uint64_t>(bytes, 1))
    throw FormatError(where + " is truncated: its header announces " + std::to_string(pixels) +
                      " pixels of " + std::to_string(bytes) + " bytes from byte " +
                      std::to_string(start) + ", the file has " + std::to_string(size) + " bytes");
  return false;
}

/// Reads the current image HDU's `n` pixels into `out`, float32 or float64 as `dtype` says, BLANK
/// pixels as NaN; returns CFITSIO's status.
int read_image_pixels(fitsfile* f, at::ScalarType dtype, LONGLONG n, void* out) {
  int status = 0, anynul = 0;
  if (dtype == at::kFloat) {
    float nul = std::numeric_limits<float>::quiet_NaN();
    fits_read_img(f, TFLOAT, 1, n, &nul, static_cast<float*>(out), &anynul, &status);
  } else {
    double nul = std::numeric_limits<double>::quiet_NaN();
    fits_read_img(f, TDOUBLE, 1, n, &nul, static_cast<double*>(out), &anynul, &status);
  }
  return status;
}

/// Reads the image pixels of `spec` into `data` (float32 or float64, its size) in a child process
/// that opens the file again (CFITSIO may share the open file, and its offset, with this
/// process, which must not read it afterwards): CFITSIO 4.2's RICE and PLIO decoders read and write
/// out of bounds on corrupt tiles, which cannot be told from good ones without decompressing them,
/// so a crash (or a sanitizer's report) ends the child and becomes a FormatError naming `where`
/// here. The pixels come back through a shared anonymous mapping; CFITSIO's own errors as
/// throw_fits'.
void read_pixels_isolated(const std::string& spec, at::Tensor& data, const std::string& where,
                          const std::string& what) {
  // The pixels, then the child's CFITSIO status and its error messages.
  constexpr std::size_t kMessages = 4096;
  const std::size_t bytes = static_cast<std::size_t>(data.nbytes());
  const std::size_t size = bytes + sizeof(int) + kMessages;
  void* shared = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED)
    throw IoError(where + ": cannot map " + std::to_string(size) + " bytes to decompress into");
  struct Unmap {
    void* p;
    std::size_t n;
    ~Unmap() { ::munmap(p, n); }
  } unmap{shared, size};
  auto* status_slot = reinterpret_cast<int*>(static_cast<char*>(shared) + bytes);
  char* messages = static_cast<char*>(shared) + bytes + sizeof(int);
  *status_slot = -1;
  std::fflush(nullptr); // nothing buffered is written twice
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError(where + ": cannot start a process to decompress in");
  if (pid == 0) { // the child: CFITSIO only, then _exit (no destructors, no atexit handlers)
    fitsfile* g = nullptr;
    int status = 0;
    if (fits_open_image(&g, spec.c_str(), READONLY, &status) == 0) {
      status = read_image_pixels(g, data.scalar_type(), data.numel(), shared);
      int ignored = 0;
      fits_close_file(g, &ignored);
    }
    char msg[FLEN_ERRMSG];
    std::size_t used = 0;
    while (fits_read_errmsg(msg) && used + std::strlen(msg) + 3 < kMessages) {
      used += static_cast<std::size_t>(
          std::snprintf(messages + used, kMessages - used, "%s%s", used ? "; " : "", msg));
    }
    *status_slot = status;
    ::_exit(0);
  }
  // A child stuck (a lock another thread held at the fork) is stopped after a generous deadline.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60 + static_cast<long>(bytes >> 24));
  int wstatus = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &wstatus, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) throw IoError(where + ": lost its decompressing process");
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &wstatus, 0);
      throw IoError(where + ": decompressing its tiles did not finish");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || *status_slot < 0)
    throw FormatError(where + ": its compressed tiles are corrupt (decompressing them " +
                      (WIFSIGNALED(wstatus)
                           ? "crashed with signal " + std::to_string(WTERMSIG(wstatus))
                           : std::string("failed")) +
                      ")");
  if (*status_slot != 0) {
    // throw_fits with the child's messages: put them on this process's CFITSIO stack.
    fits_clear_errmsg();
    messages[kMessages - 1] = '\0';
    const std::string text(messages);
    for (std::size_t at = 0; at < text.size();) {
      const std::size_t end = std::min(text.find("; ", at), text.size());
      ffpmsg(text.substr(at, end - at).c_str());
      at = end + 2;
    }
    throw_fits(*status_slot, what);
  }
  std::memcpy(data.data_ptr(), shared, bytes);
}

/// FormatError naming `what` unless the current table HDU's rows (NAXIS1 x NAXIS2 bytes) and heap
/// (PCOUNT) lie within the file: checked before buffers of that many rows are allocated.
void check_table_fits(fitsfile* f, const std::string& what) {
  int status = 0;
  LONGLONG head = 0, data_start = 0, data_end = 0;
  if (fits_get_hduaddrll(f, &head, &data_start, &data_end, &status)) throw_fits(status, what);
  const long long width = integer_key(f, "NAXIS1").value_or(-1);
  const long long rows = integer_key(f, "NAXIS2").value_or(-1);
  const long long heap = integer_key(f, "PCOUNT").value_or(0);
  if (width < 0 || rows < 0 || heap < 0)
    throw FormatError(what + ": NAXIS1 = " + std::to_string(width) +
                      ", NAXIS2 = " + std::to_string(rows) + ", PCOUNT = " + std::to_string(heap) +
                      " (none may be negative)");
  const std::uint64_t size = logical_size(f);
  const auto start = static_cast<std::uint64_t>(std::max<LONGLONG>(data_start, 0));
  const std::uint64_t room = start > size ? 0 : size - start;
  const auto w = static_cast<std::uint64_t>(width), r = static_cast<std::uint64_t>(rows);
  if ((w > 0 && r > room / w) || w * r + static_cast<std::uint64_t>(heap) > room)
    throw FormatError(what + ": the table is truncated: its header announces " +
                      std::to_string(rows) + " rows of " + std::to_string(width) +
                      " bytes and a heap of " + std::to_string(heap) + " bytes from byte " +
                      std::to_string(start) + ", the file has " + std::to_string(size) + " bytes");
}

/// at::empty, with a failed allocation (a header asking for more memory than there is) as an
/// IoError naming `where`.
at::Tensor allocate(const std::vector<int64_t>& shape, at::ScalarType dtype,
                    const std::string& where) {
  try {
    return at::empty(shape, at::TensorOptions().dtype(dtype));
  } catch (const std::exception&) { // c10::Error or std::bad_alloc
    std::string dims;
    for (auto d : shape) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
    throw IoError(where + ": not enough memory for its " + dims + " " +
                  std::string(c10::toString(dtype)) + " values");
  }
}

/// The value of a header card as text, blanks and quotes removed ("" for a card without '= ').
std::string card_value(const char* card) {
  if (std::strncmp(card + 8, "= ", 2) != 0) return {};
  std::string v(card + 10, 70);
  const auto slash = v.find('/');
  if (v.find('\'') == std::string::npos && slash != std::string::npos) v.resize(slash);
  std::erase(v, '\'');
  const auto b = v.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  return v.substr(b, v.find_last_not_of(' ') - b + 1);
}

std::optional<long long> whole_number(const std::string& text) {
  long long v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size())
    return std::nullopt;
  return v;
}

/// CFITSIO divides by ZTILEn and by RICE's block size (ZVAL1) while it opens a tile-compressed
/// HDU, before it could return a status (SIGFPE on a zero), and its decompressors trust ZNAXISn:
/// such headers are refused from their cards before CFITSIO opens the file. Every header is read
/// (through zlib, so .gz files too); a file too broken to walk is left to CFITSIO's errors.
void check_headers(gzFile in, const std::string& what) {
  char block[2880];
  for (int hdu = 0; hdu < 100000; ++hdu) {
    std::map<std::string, std::string> keys;
    bool end = false;
    while (!end) {
      if (gzread(in, block, sizeof block) != static_cast<int>(sizeof block)) return;
      for (int c = 0; c < 36 && !end; ++c) {
        const char* card = block + 80 * c;
        std::string key(card, 8);
        key.erase(key.find_last_not_of(' ') + 1);
        if (key == "END")
          end = true;
        else if (!key.empty())
          keys.emplace(key, card_value(card));
      }
    }
    const auto number = [&](const std::string& key) -> std::optional<long long> {
      const auto it = keys.find(key);
      return it == keys.end() ? std::nullopt : whole_number(it->second);
    };
    const std::string where = what + " (HDU " + std::to_string(hdu) + ")";
    if (keys.count("ZIMAGE") && keys["ZIMAGE"] == "T") {
      const auto zbitpix = number("ZBITPIX").value_or(0);
      if (zbitpix != 8 && zbitpix != 16 && zbitpix != 32 && zbitpix != 64 && zbitpix != -32 &&
          zbitpix != -64)
        throw FormatError(where + ": the compressed image's ZBITPIX = " + keys["ZBITPIX"] +
                          " is not 8, 16, 32, 64, -32 or -64");
      for (int i = 1; i <= 999; ++i) {
        const std::string n = std::to_string(i);
        if (!keys.count("ZNAXIS" + n)) break;
        const auto length = number("ZNAXIS" + n);
        if (!length || *length < 1)
          throw FormatError(where + ": the compressed image's ZNAXIS" + n + " = " +
                            keys["ZNAXIS" + n] + " is not a whole number >= 1");
        // A tile larger than the image is no writer's, and CFITSIO allocates a tile's size.
        const auto tile = keys.count("ZTILE" + n) ? number("ZTILE" + n) : length;
        if (!tile || *tile < 1 || *tile > *length)
          throw FormatError(where + ": the compressed image's ZTILE" + n + " = " +
                            keys["ZTILE" + n] + " is not a whole number in 1..ZNAXIS" + n);
      }
      if (keys["ZCMPTYPE"].rfind("RICE", 0) == 0) {
        const auto block_size = keys.count("ZVAL1") ? number("ZVAL1") : 32;
        const auto bytepix = keys.count("ZVAL2") ? number("ZVAL2") : 4;
        if (!block_size || *block_size < 1 || *block_size > 1024 || !bytepix ||
            (*bytepix != 1 && *bytepix != 2 && *bytepix != 4 && *bytepix != 8))
          throw FormatError(where + ": the RICE parameters ZVAL1 = " + keys["ZVAL1"] +
                            " (block size, 1..1024), ZVAL2 = " + keys["ZVAL2"] +
                            " (bytes per pixel, 1, 2, 4 or 8) are not valid");
      }
    }
    // Skip the data: |BITPIX| / 8 x GCOUNT x (PCOUNT + NAXIS1 x ... x NAXISn), in whole blocks.
    const auto bitpix = number("BITPIX"), naxis = number("NAXIS");
    if (!bitpix || !naxis || *naxis < 0 || *naxis > 999) return;
    std::uint64_t size = *naxis > 0 ? 1 : 0;
    for (long long i = 1; i <= *naxis; ++i) {
      const auto a = number("NAXIS" + std::to_string(i));
      if (!a || *a < 0 || (*a > 0 && size > (1ull << 50) / static_cast<std::uint64_t>(*a))) return;
      size *= static_cast<std::uint64_t>(*a);
    }
    const long long pcount = number("PCOUNT").value_or(0), gcount = number("GCOUNT").value_or(1);
    if (pcount < 0 || gcount < 0 || pcount > (1ll << 50) || gcount > (1ll << 20)) return;
    if (size > 0 || pcount > 0)
      size = (size + static_cast<std::uint64_t>(pcount)) * static_cast<std::uint64_t>(gcount);
    size *= static_cast<std::uint64_t>(std::llabs(*bitpix) / 8);
    size = (size + 2879) / 2880 * 2880;
    if (size > (1ull << 60) || gzseek(in, static_cast<z_off_t>(size), SEEK_CUR) < 0) return;
  }
}

void check_compressed_headers(const std::string& path, const std::string& what) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (!in) return;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(in, gzclose);
  check_headers(in, what);
  if (gzdirect(in)) return;
  // A gzip file is inflated to its end: CFITSIO sizes its memory copy from the trailer of a
  // stream it does not check first (a truncated file made it allocate gigabytes).
  char block[65536];
  while (gzread(in, block, sizeof block) > 0) {
  }
  int error = Z_OK;
  const char* message = gzerror(in, &error);
  if (error != Z_OK && error != Z_STREAM_END)
    throw FormatError(what + ": its gzip data are truncated or corrupt (" + message + ")");
}

void check_exists(const std::string& spec) {
  detail::require_input_file(strip_hdu_selector(spec), spec);
  check_compressed_headers(strip_hdu_selector(spec), describe_spec(spec));
}

/// Writes one image HDU at the current position of `f` (primary if the file is new).
void write_image_hdu(fitsfile* f, const at::Tensor& data, const FitsHeader& header,
                     FitsPixelType type, const std::string& extname, const std::string& what) {
  if (data.is_complex())
    throw ValueError(what + ": FITS has no complex image type (got " +
                     std::string(c10::toString(data.scalar_type())) +
                     "); write .npy, or split real and imaginary parts");
  if (data.dim() < 2 || data.dim() > 4)
    throw ShapeError(what +
                     ": FITS images are written from (H, W), (C, H, W) or (N, C, H, W) "
                     "tensors, got " +
                     std::to_string(data.dim()) + " dimensions");
  if (data.numel() == 0) throw ShapeError(what + ": the image has no pixels");
  const bool f64 = type == FitsPixelType::Float64;
  const at::Tensor pixels = data.detach().to(at::kCPU, f64 ? at::kDouble : at::kFloat).contiguous();
  std::vector<long> naxes(pixels.sizes().rbegin(), pixels.sizes().rend()); // FITS: fastest first
  int status = 0;
  fits_create_img(f, f64 ? DOUBLE_IMG : FLOAT_IMG, static_cast<int>(naxes.size()), naxes.data(),
                  &status);
  for (const auto& card : header.cards()) {
    std::string c = card;
    fits_write_record(f, c.c_str(), &status);
  }
  if (!extname.empty()) {
    std::string name = extname;
    fits_update_key_str(f, "EXTNAME", name.data(), "name of this HDU", &status);
  }
  fits_write_date(f, &status);
  fits_write_img(f, f64 ? TDOUBLE : TFLOAT, 1, static_cast<LONGLONG>(pixels.numel()),
                 const_cast<void*>(pixels.data_ptr()), &status);
  fits_write_chksum(f, &status);
  if (status) throw_fits(status, what);
}

/// A character column ("wA") of `rows` strings, each padded with NUL bytes rather than the spaces
/// CFITSIO's string writer adds: FITS allows both, and readers that compare bytes (astropy's
/// Table.read: t[t["CLASS"] == "C01"]) then see "C01", not "C01   ".
void write_text_column(fitsfile* f, int col, const std::vector<std::string>& text,
                       std::size_t width, int* status) {
  std::vector<unsigned char> bytes(text.size() * width, 0);
  for (std::size_t r = 0; r < text.size(); ++r)
    std::copy(text[r].begin(), text[r].begin() + std::min(text[r].size(), width),
              bytes.begin() + static_cast<std::ptrdiff_t>(r * width));
  fits_write_col(f, TBYTE, col, 1, 1, static_cast<LONGLONG>(bytes.size()), bytes.data(), status);
}

void create_file(FitsFile& file, const detail::AtomicFile& out, const std::string& what) {
  int status = 0;
  const std::string& temp = out.temp_path();
  std::remove(temp.c_str()); // a stale temporary (an earlier process of the same id)
  // The disk-file driver takes the name as it is: a folder with brackets or parentheses is not
  // CFITSIO's extended syntax. (".gz" targets are compressed by AtomicFile::commit.)
  if (ffdkinit(file.out(), temp.c_str(), &status)) throw_fits(status, what);
}

} // namespace

// ---- FitsHeader ---------------------------------------------------------------------------------

void shift_reference_pixel(FitsHeader& header, double x0, double y0) {
  std::vector<std::string> suffixes{""};
  for (char c = 'A'; c <= 'Z'; ++c) suffixes.emplace_back(1, c);
  for (const std::string& a : suffixes)
    for (const auto& [axis, shift] : {std::pair{"1", x0}, std::pair{"2", y0}}) {
      const std::string key = std::string("CRPIX") + axis + a;
      if (const auto v = header.number(key))
        header.set(key, *v - shift, "reference pixel (of a cutout)");
    }
}

std::optional<at::Tensor> pixel_to_sky(const FitsHeader& header, const at::Tensor& xy) {
  const auto c1 = header.value("CTYPE1"), c2 = header.value("CTYPE2");
  if (!c1 || !c2 || c1->rfind("RA--", 0) != 0 || c2->rfind("DEC-", 0) != 0) return std::nullopt;
  if (xy.dim() != 2 || xy.size(1) != 2)
    throw ShapeError("pixel_to_sky: positions must be (N, 2), got " + std::to_string(xy.dim()) +
                     " dimension(s)");
  // CFITSIO's WCS routines read the keywords of an open HDU: the header goes to a file in memory.
  fitsfile* f = nullptr;
  int status = 0;
  fits_create_file(&f, "mem://", &status);
  long naxes[2] = {1, 1};
  fits_create_img(f, BYTE_IMG, 2, naxes, &status);
  for (const auto& card : header.cards()) {
    std::string c = card;
    fits_write_record(f, c.c_str(), &status);
  }
  double xref = 0, yref = 0, xpix = 0, ypix = 0, xinc = 0, yinc = 0, rot = 0;
  char type[FLEN_VALUE] = {};
  if (status == 0)
    fits_read_img_coord(f, &xref, &yref, &xpix, &ypix, &xinc, &yinc, &rot, type, &status);
  int closed = 0;
  if (f) fits_close_file(f, &closed);
  if (status != 0) return std::nullopt; // incomplete, or a CD matrix with skew (APPROX_WCS_KEY)
  const at::Tensor p = xy.detach().to(at::kCPU, at::kDouble).contiguous();
  at::Tensor sky = at::empty({p.size(0), 2}, at::kDouble);
  const double* in = p.data_ptr<double>();
  double* out = sky.data_ptr<double>();
  for (int64_t i = 0; i < p.size(0); ++i) {
    // FITS pixels count from 1.
    fits_pix_to_world(in[2 * i] + 1, in[2 * i + 1] + 1, xref, yref, xpix, ypix, xinc, yinc, rot,
                      type, out + 2 * i, out + 2 * i + 1, &status);
    if (status != 0) return std::nullopt;
  }
  return sky;
}

void FitsHeader::add_card(std::string_view card) {
  std::string c = pad_card(card);
  if (is_structural(c)) return;
  const std::string key = card_keyword(c);
  if (!accumulates(key)) {
    auto it = std::find_if(cards_.begin(), cards_.end(),
                           [&](const std::string& x) { return card_keyword(x) == key; });
    if (it != cards_.end()) {
      *it = c;
      return;
    }
  }
  cards_.push_back(std::move(c));
}

void FitsHeader::set(std::string_view key, std::string_view value, std::string_view comment) {
  std::string quoted = "'";
  for (char ch : value) quoted += ch == '\'' ? std::string("''") : std::string(1, ch);
  quoted += "'";
  add_card(make_card(key, quoted, comment));
}

void FitsHeader::set(std::string_view key, double value, std::string_view comment) {
  if (!std::isfinite(value))
    throw ValueError("FITS keyword '" + std::string(key) + "' cannot hold a non-finite value");
  char text[40];
  std::snprintf(text, sizeof text, "%.17G", value);
  std::string v = text;
  if (v.find_first_of(".E") == std::string::npos) v += ".0"; // stays a real number for readers
  add_card(make_card(key, v, comment));
}

void FitsHeader::set(std::string_view key, long long value, std::string_view comment) {
  add_card(make_card(key, std::to_string(value), comment));
}

void FitsHeader::set(std::string_view key, bool value, std::string_view comment) {
  add_card(make_card(key, value ? "T" : "F", comment));
}

void FitsHeader::add_history(std::string_view text) {
  // HISTORY cards hold 72 characters of text each.
  for (std::size_t i = 0; i < text.size() || i == 0; i += 72)
    cards_.push_back(pad_card("HISTORY " + std::string(text.substr(i, 72))));
}

bool FitsHeader::contains(std::string_view key) const {
  return std::any_of(cards_.begin(), cards_.end(),
                     [&](const std::string& c) { return card_keyword(c) == key; });
}

std::optional<std::string> FitsHeader::value(std::string_view key) const {
  for (const auto& card : cards_) {
    if (card_keyword(card) != key) continue;
    char value[FLEN_VALUE] = {0}, comment[FLEN_COMMENT] = {0};
    int status = 0;
    std::string copy = card;
    if (fits_parse_value(copy.data(), value, comment, &status)) return std::string();
    std::string v = value;
    if (v.size() >= 2 && v.front() == '\'') {
      std::string out;
      for (std::size_t i = 1; i + 1 < v.size(); ++i) {
        out += v[i];
        if (v[i] == '\'' && v[i + 1] == '\'') ++i;
      }
      while (!out.empty() && out.back() == ' ') out.pop_back();
      return out;
    }
    return v;
  }
  return std::nullopt;
}

std::optional<double> FitsHeader::number(std::string_view key) const {
  const auto text = value(key);
  if (!text) return std::nullopt;
  std::string t = *text;
  std::replace(t.begin(), t.end(), 'D', 'E'); // FITS allows Fortran double exponents
  char* end = nullptr;
  const double x = std::strtod(t.c_str(), &end);
  if (t.empty() || end == t.c_str() || *end != '\0')
    throw ValueError("FITS keyword '" + std::string(key) + "' is not a number: '" + *text + "'");
  return x;
}

void FitsHeader::erase(std::string_view key) {
  std::erase_if(cards_, [&](const std::string& c) { return card_keyword(c) == key; });
}

// ---- HDU selectors ------------------------------------------------------------------------------

bool has_hdu_selector(const std::string& spec) {
  const auto slash = spec.find_last_of('/');
  const auto open = spec.find('[', slash == std::string::npos ? 0 : slash);
  return open != std::string::npos && open > 0 && spec.back() == ']';
}

std::string strip_hdu_selector(const std::string& spec) {
  if (!has_hdu_selector(spec)) return spec;
  const auto slash = spec.find_last_of('/');
  return spec.substr(0, spec.find('[', slash == std::string::npos ? 0 : slash));
}

// ---- Reading ------------------------------------------------------------------------------------

namespace {

/// For a selector that names no HDU of a readable file: ValueError listing the file's HDUs.
/// Returns when the file itself cannot be listed (then the open's own error is the right one).
void throw_if_no_such_hdu(const std::string& spec) {
  if (!has_hdu_selector(spec)) return;
  std::vector<FitsHduInfo> hdus;
  try {
    hdus = list_fits_hdus(spec);
  } catch (const Error&) {
    return;
  }
  // The HDU exists (the file is damaged there): the open's own error says so.
  const auto open = spec.find('['), close = spec.find(']', open);
  std::string sel = spec.substr(open + 1, close == std::string::npos ? close : close - open - 1);
  for (char& c : sel) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const bool number = !sel.empty() && sel.find_first_not_of("0123456789") == std::string::npos;
  for (const FitsHduInfo& h : hdus) {
    std::string name = h.name;
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (number ? std::to_string(h.index) == sel : name == sel) return;
  }
  std::string list;
  for (const FitsHduInfo& h : hdus)
    list +=
        (list.empty() ? "" : ", ") + std::to_string(h.index) + " " + h.name + " (" + h.kind + ")";
  throw ValueError("'" + spec + "': no such HDU; '" + strip_hdu_selector(spec) + "' has " +
                   std::to_string(hdus.size()) + " HDU(s), numbered from 0: " + list);
}

} // namespace

FitsImage read_fits(const std::string& spec) {
  check_exists(spec);
  const std::string what = describe_spec(spec);
  FitsFile file;
  int status = 0;
  fits_clear_errmsg();
  if (fits_open_image(file.out(), spec.c_str(), READONLY, &status)) {
    if (status == END_OF_FILE || status == BAD_HDU_NUM || status == URL_PARSE_ERROR) {
      fits_clear_errmsg();
      throw_if_no_such_hdu(spec);
    }
    throw_fits(status, what);
  }
  fitsfile* f = file.get();

  FitsImage out;
  int hdu = 0;
  fits_get_hdu_num(f, &hdu);
  out.hdu_index = hdu - 1;
  char extname[FLEN_VALUE] = {0};
  if (fits_read_key(f, TSTRING, "EXTNAME", extname, nullptr, &status) == KEY_NO_EXIST) {
    status = 0;
    fits_clear_errmsg();
  }
  out.name = extname;

  int naxis = 0, bitpix = 0, equivtype = 0;
  long naxes[16] = {0};
  fits_get_img_param(f, 16, &bitpix, &naxis, naxes, &status);
  fits_get_img_equivtype(f, &equivtype, &status);
  if (status) throw_fits(status, what);
  out.bitpix = bitpix;
  const std::string where = "'" + spec + "' (HDU " + std::to_string(out.hdu_index) +
                            (out.name.empty() ? "" : " " + out.name) + ")";
  if (naxis == 0)
    throw ShapeError(where + " holds no image data (NAXIS = 0); choose another HDU, e.g. '" +
                     strip_hdu_selector(spec) + "[1]'");
  if (naxis > 16) throw ShapeError(where + " has NAXIS = " + std::to_string(naxis));
  std::vector<long> axes(naxes, naxes + naxis);
  while (axes.size() > 2 && axes.back() == 1) axes.pop_back(); // degenerate Stokes/frequency axes
  if (axes.size() < 2 || axes.size() > 4) {
    std::string dims;
    for (long a : std::vector<long>(naxes, naxes + naxis))
      dims += (dims.empty() ? "" : " x ") + std::to_string(a);
    throw ShapeError(where + " has NAXIS = " + std::to_string(naxis) + " (" + dims +
                     "); demix reads 2D images, 3D cubes and 4D batches of cubes");
  }
  for (long a : axes)
    if (a <= 0) throw ShapeError(where + " has an empty axis (length " + std::to_string(a) + ")");
  // A header may claim more data than the file holds: refuse before allocating it.
  std::uint64_t pixels = 1; // saturates at 2^62 (no sum of shapes that large fits a file)
  for (long a : axes)
    pixels = pixels > (1ull << 62) / static_cast<std::uint64_t>(a)
                 ? (1ull << 62)
                 : pixels * static_cast<std::uint64_t>(a);
  const bool isolate = check_data_fits(f, where, pixels, std::abs(bitpix) / 8);
  status = 0;

  double bscale = 1, bzero = 0;
  if (fits_read_key(f, TDOUBLE, "BSCALE", &bscale, nullptr, &status) == KEY_NO_EXIST) status = 0;
  if (fits_read_key(f, TDOUBLE, "BZERO", &bzero, nullptr, &status) == KEY_NO_EXIST) status = 0;
  fits_clear_errmsg();
  out.scaled = bscale != 1.0 || bzero != 0.0;

  // The header first: after a child process has read the file (read_pixels_isolated), the file
  // offset it shares with this process is no longer where CFITSIO left it.
  int nkeys = 0;
  fits_get_hdrspace(f, &nkeys, nullptr, &status);
  for (int i = 1; i <= nkeys; ++i) {
    char card[FLEN_CARD] = {0};
    if (fits_read_record(f, i, card, &status)) break;
    out.header.add_card(card);
  }
  if (status) throw_fits(status, what);

  const bool f32 = fits_in_float32(bitpix, equivtype, out.scaled);
  std::vector<int64_t> shape(axes.rbegin(), axes.rend());
  out.data = allocate(shape, f32 ? at::kFloat : at::kDouble, where);
  if (isolate)
    read_pixels_isolated(spec, out.data, where, what);
  else if (const int read =
               read_image_pixels(f, out.data.scalar_type(), out.data.numel(), out.data.data_ptr()))
    throw_fits(read, what);

  file.close(what);
  return out;
}

std::vector<FitsHduInfo> list_fits_hdus(const std::string& spec) {
  check_exists(spec);
  const std::string base = strip_hdu_selector(spec);
  const std::string what = describe_spec(base);
  FitsFile file;
  int status = 0, count = 0;
  fits_clear_errmsg();
  if (fits_open_diskfile(file.out(), base.c_str(), READONLY, &status)) throw_fits(status, what);
  fits_get_num_hdus(file.get(), &count, &status);
  std::vector<FitsHduInfo> out;
  for (int i = 1; i <= count && !status; ++i) {
    int type = 0;
    fits_movabs_hdu(file.get(), i, &type, &status);
    FitsHduInfo info;
    info.index = i - 1;
    char extname[FLEN_VALUE] = {0};
    if (fits_read_key(file.get(), TSTRING, "EXTNAME", extname, nullptr, &status) == KEY_NO_EXIST)
      status = 0;
    info.name = extname[0] ? extname : (i == 1 ? "PRIMARY" : "");
    if (type == IMAGE_HDU) {
      info.kind = "image";
      int naxis = 0;
      long naxes[16] = {0};
      fits_get_img_param(file.get(), 16, &info.bitpix, &naxis, naxes, &status);
      info.naxes.assign(naxes, naxes + std::min(naxis, 16));
    } else {
      info.kind = type == BINARY_TBL ? "binary table" : "ascii table";
      int ncols = 0;
      long nrows = 0;
      fits_get_num_cols(file.get(), &ncols, &status);
      fits_get_num_rows(file.get(), &nrows, &status);
      info.naxes = {ncols, nrows};
    }
    out.push_back(std::move(info));
  }
  fits_clear_errmsg();
  if (status) throw_fits(status, what);
  file.close(what);
  return out;
}

// ---- Writing ------------------------------------------------------------------------------------

void write_fits(const std::string& path, const at::Tensor& data, const FitsHeader& header,
                FitsPixelType type, const std::string& extname) {
  const std::string what = "cannot write FITS '" + path + "'";
  detail::AtomicFile out(path);
  FitsFile file;
  fits_clear_errmsg();
  create_file(file, out, what);
  write_image_hdu(file.get(), data, header, type, extname, what);
  file.close(what);
  out.commit();
}

void write_fits_extensions(const std::string& path, const std::vector<FitsHduOut>& hdus,
                           const FitsHeader& primary_header) {
  const std::string what = "cannot write FITS '" + path + "'";
  std::set<std::string> names;
  for (const auto& h : hdus) {
    if (h.name.empty()) throw ValueError(what + ": every extension needs a name (EXTNAME)");
    if (!names.insert(h.name).second)
      throw ValueError(what + ": extension name '" + h.name + "' is used twice");
  }
  detail::AtomicFile out(path);
  FitsFile file;
  fits_clear_errmsg();
  create_file(file, out, what);
  int status = 0;
  fits_create_img(file.get(), BYTE_IMG, 0, nullptr, &status);
  for (const auto& card : primary_header.cards())
    fits_write_record(file.get(), card.c_str(), &status);
  fits_write_date(file.get(), &status);
  fits_write_chksum(file.get(), &status);
  if (status) throw_fits(status, what);
  for (const auto& h : hdus) write_image_hdu(file.get(), h.data, h.header, h.type, h.name, what);
  file.close(what);
  out.commit();
}

// ---- Coefficient tables -------------------------------------------------------------------------

namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

void check_coefficients(const Coefficients& c, const std::string& what) {
  if (!c.values.defined() || !c.class_id.defined() || !c.labels.defined())
    throw ValueError(what + ": the coefficients have undefined values, class ids or labels");
  const int64_t K = c.size();
  if (c.values.dim() != 2 || c.values.size(1) != K)
    throw ShapeError(what + ": values must be (B, K) with K = " + std::to_string(K) +
                     " coefficients, got " + std::to_string(c.values.dim()) + " dimensions" +
                     (c.values.dim() == 2 ? " (" + std::to_string(c.values.size(0)) + ", " +
                                                std::to_string(c.values.size(1)) + ")"
                                          : std::string()));
  if (c.values.size(0) < 1) throw ShapeError(what + ": the batch is empty (B = 0)");
  const auto n_labels = static_cast<int64_t>(c.label_names.size());
  if (c.labels.dim() != 2 || c.labels.size(0) != K || c.labels.size(1) != n_labels)
    throw ShapeError(what + ": labels must be (K, " + std::to_string(n_labels) + ") = (" +
                     std::to_string(K) + ", " + std::to_string(n_labels) + ")");
  if (c.classes.empty() && K > 0) throw ValueError(what + ": the coefficients have no class names");
  if (K > 0) {
    const int64_t lo = c.class_id.min().item<int64_t>(), hi = c.class_id.max().item<int64_t>();
    if (lo < 0 || hi >= static_cast<int64_t>(c.classes.size()))
      throw ValueError(what + ": class id " + std::to_string(lo < 0 ? lo : hi) + " outside the " +
                       std::to_string(c.classes.size()) + " class names");
  }
  std::set<std::string> columns{"CLASS", "REAL", "IMAG"};
  for (const auto& n : c.label_names)
    if (n.empty() || n.size() > 68 || !columns.insert(upper(n)).second)
      throw ValueError(what + ": label name '" + n +
                       "' is empty, too long or clashes with another column (CLASS, REAL, IMAG, "
                       "or a label differing only in case)");
}

} // namespace

void write_coefficients_fits(const std::string& path, const Coefficients& c,
                             const FitsHeader& primary_header) {
  const std::string what = "cannot write FITS '" + path + "'";
  check_coefficients(c, what);
  const int64_t K = c.size(), B = c.values.size(0);
  const bool complex = c.values.is_complex();
  // (K, B) float64: FITS stores each row's vector contiguously.
  const at::Tensor v = c.values.detach().to(at::kCPU);
  const at::Tensor re = (complex ? at::real(v) : v).to(at::kDouble).transpose(0, 1).contiguous();
  const at::Tensor im = complex ? at::imag(v).to(at::kDouble).transpose(0, 1).contiguous()
                                : at::zeros({K, B}, at::kDouble);
  const at::Tensor ids = c.class_id.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor labels = c.labels.to(at::kCPU, at::kLong).contiguous();

  std::size_t width = 1;
  for (const auto& name : c.classes) width = std::max(width, name.size());
  std::vector<std::string> names{"CLASS"}, forms{std::to_string(width) + "A"};
  for (const auto& n : c.label_names) {
    names.push_back(upper(n));
    forms.push_back("1K");
  }
  const std::string vector_form = (B == 1 ? std::string("1") : std::to_string(B)) + "D";
  names.insert(names.end(), {"REAL", "IMAG"});
  forms.insert(forms.end(), {vector_form, vector_form});
  std::vector<char*> ttype, tform;
  for (auto& n : names) ttype.push_back(n.data());
  for (auto& f : forms) tform.push_back(f.data());

  detail::AtomicFile out(path);
  FitsFile file;
  fits_clear_errmsg();
  create_file(file, out, what);
  fitsfile* f = file.get();
  int status = 0;
  fits_create_img(f, BYTE_IMG, 0, nullptr, &status);
  for (const auto& card : primary_header.cards()) fits_write_record(f, card.c_str(), &status);
  fits_write_date(f, &status);
  fits_write_chksum(f, &status);
  if (status) throw_fits(status, what);

  std::string extname = kCoefficientsExtname;
  fits_create_tbl(f, BINARY_TBL, static_cast<LONGLONG>(K), static_cast<int>(names.size()),
                  ttype.data(), tform.data(), nullptr, extname.c_str(), &status);
  long long nmaps = B, ncoeff = K, nclass = static_cast<long long>(c.classes.size());
  int cplx = complex ? 1 : 0;
  fits_write_key(f, TLONGLONG, "NMAPS", &nmaps, "number of maps (length of REAL and IMAG)",
                 &status);
  fits_write_key(f, TLONGLONG, "NCOEFF", &ncoeff, "number of coefficients (rows)", &status);
  fits_write_key(f, TLOGICAL, "CPLXVAL", &cplx, "T if the values are complex", &status);
  fits_write_key(f, TLONGLONG, "NCLASS", &nclass, "number of coefficient classes", &status);
  for (std::size_t i = 0; i < c.classes.size(); ++i) {
    std::string key = "CLASS" + std::to_string(i + 1), value = c.classes[i];
    if (key.size() > 8) throw ValueError(what + ": more than 999 coefficient classes");
    fits_write_key(f, TSTRING, key.c_str(), value.data(), "coefficient class name", &status);
  }
  if (status) throw_fits(status, what);
  if (K > 0) {
    std::vector<std::string> class_text(K);
    const int64_t* id = ids.data_ptr<int64_t>();
    for (int64_t k = 0; k < K; ++k) {
      class_text[k] = c.classes[id[k]];
    }
    write_text_column(f, 1, class_text, width, &status);
    for (std::size_t l = 0; l < c.label_names.size(); ++l) {
      std::vector<LONGLONG> column(K);
      const int64_t* lab = labels.data_ptr<int64_t>();
      for (int64_t k = 0; k < K; ++k) column[k] = lab[k * labels.size(1) + l];
      fits_write_col(f, TLONGLONG, static_cast<int>(l + 2), 1, 1, K, column.data(), &status);
    }
    const int real_col = static_cast<int>(c.label_names.size()) + 2;
    fits_write_col(f, TDOUBLE, real_col, 1, 1, K * B, re.data_ptr<double>(), &status);
    fits_write_col(f, TDOUBLE, real_col + 1, 1, 1, K * B, im.data_ptr<double>(), &status);
  }
  fits_write_date(f, &status);
  fits_write_chksum(f, &status);
  if (status) throw_fits(status, what);
  file.close(what);
  out.commit();
}

Coefficients read_coefficients_fits(const std::string& path, FitsHeader* primary_header) {
  detail::require_input_file(path, path);
  const std::string what = "cannot read coefficients from FITS '" + path + "'";
  check_compressed_headers(path, what);
  FitsFile file;
  int status = 0;
  fits_clear_errmsg();
  if (fits_open_diskfile(file.out(), path.c_str(), READONLY, &status)) throw_fits(status, what);
  fitsfile* f = file.get();
  if (primary_header) {
    int nkeys = 0;
    fits_get_hdrspace(f, &nkeys, nullptr, &status);
    for (int i = 1; i <= nkeys && !status; ++i) {
      char card[FLEN_CARD] = {0};
      if (!fits_read_record(f, i, card, &status)) primary_header->add_card(card);
    }
    if (status) throw_fits(status, what);
  }
  std::string extname = kCoefficientsExtname;
  if (fits_movnam_hdu(f, BINARY_TBL, extname.data(), 0, &status)) {
    fits_clear_errmsg();
    throw FormatError(what + ": it has no binary table named " + extname +
                      " (is it a map rather than a file written by 'demix stats'?)");
  }
  check_table_fits(f, what);
  long nrows = 0;
  int ncols = 0;
  fits_get_num_rows(f, &nrows, &status);
  fits_get_num_cols(f, &ncols, &status);
  if (status) throw_fits(status, what);
  const int64_t K = nrows;

  // Columns: CLASS, labels..., REAL, IMAG (found by name; labels are the other columns, in order).
  int class_col = 0, real_col = 0, imag_col = 0;
  std::vector<std::pair<int, std::string>> label_cols;
  for (int col = 1; col <= ncols; ++col) {
    char key[FLEN_KEYWORD], name[FLEN_VALUE] = {0};
    std::snprintf(key, sizeof key, "TTYPE%d", col);
    if (fits_read_key(f, TSTRING, key, name, nullptr, &status)) throw_fits(status, what);
    const std::string n = upper(name);
    if (n == "CLASS")
      class_col = col;
    else if (n == "REAL")
      real_col = col;
    else if (n == "IMAG")
      imag_col = col;
    else
      label_cols.emplace_back(col, lower(name));
  }
  if (!class_col || !real_col || !imag_col)
    throw FormatError(what + ": the " + extname + " table lacks a CLASS, REAL or IMAG column");
  int type = 0;
  long repeat = 0, width = 0, imag_repeat = 0;
  fits_get_coltype(f, real_col, &type, &repeat, &width, &status);
  fits_get_coltype(f, imag_col, &type, &imag_repeat, &width, &status);
  if (status) throw_fits(status, what);
  if (repeat < 1 || imag_repeat != repeat)
    throw FormatError(what + ": REAL and IMAG must hold the same number (>= 1) of values per row");
  const int64_t B = repeat;

  long long nclass = 0;
  std::vector<std::string> classes;
  if (fits_read_key(f, TLONGLONG, "NCLASS", &nclass, nullptr, &status) == KEY_NO_EXIST) {
    status = 0;
    fits_clear_errmsg();
  } else {
    for (long long i = 1; i <= nclass && !status; ++i) {
      char value[FLEN_VALUE] = {0};
      const std::string key = "CLASS" + std::to_string(i);
      fits_read_key(f, TSTRING, key.c_str(), value, nullptr, &status);
      classes.emplace_back(value);
    }
  }
  int cplx = 1;
  if (fits_read_key(f, TLOGICAL, "CPLXVAL", &cplx, nullptr, &status) == KEY_NO_EXIST) {
    status = 0;
    cplx = 1;
    fits_clear_errmsg();
  }
  if (status) throw_fits(status, what);

  Coefficients c;
  for (const auto& [col, name] : label_cols) c.label_names.push_back(name);
  c.class_id = at::empty({K}, at::kLong);
  c.labels = at::empty({K, static_cast<int64_t>(label_cols.size())}, at::kLong);
  at::Tensor re = at::empty({K, B}, at::kDouble), im = at::empty({K, B}, at::kDouble);
  if (K > 0) {
    fits_get_coltype(f, class_col, &type, &repeat, &width, &status);
    if (status) throw_fits(status, what);
    // CFITSIO would write numbers formatted at their display width into buffers of `repeat`.
    if (type != TSTRING)
      throw FormatError(what + ": its CLASS column holds numbers, not text (class names)");
    std::vector<std::string> text(K, std::string(static_cast<std::size_t>(repeat) + 1, '\0'));
    std::vector<char*> ptr(K);
    for (int64_t k = 0; k < K; ++k) ptr[k] = text[k].data();
    int anynul = 0;
    char nul[] = "";
    fits_read_col_str(f, class_col, 1, 1, K, nul, ptr.data(), &anynul, &status);
    if (status) throw_fits(status, what);
    int64_t* id = c.class_id.data_ptr<int64_t>();
    for (int64_t k = 0; k < K; ++k) {
      std::string name = ptr[k];
      while (!name.empty() && name.back() == ' ') name.pop_back();
      auto it = std::find(classes.begin(), classes.end(), name);
      if (it == classes.end()) {
        if (nclass > 0)
          throw FormatError(what + ": row " + std::to_string(k + 1) + " has class '" + name +
                            "', not among the NCLASS class names");
        classes.push_back(name);
        it = classes.end() - 1;
      }
      id[k] = it - classes.begin();
    }
    for (std::size_t l = 0; l < label_cols.size(); ++l) {
      std::vector<LONGLONG> column(K);
      LONGLONG lnul = -1;
      fits_read_col(f, TLONGLONG, label_cols[l].first, 1, 1, K, &lnul, column.data(), &anynul,
                    &status);
      int64_t* lab = c.labels.data_ptr<int64_t>();
      const auto n_labels = static_cast<int64_t>(label_cols.size());
      for (int64_t k = 0; k < K; ++k) lab[k * n_labels + static_cast<int64_t>(l)] = column[k];
    }
    double dnul = std::numeric_limits<double>::quiet_NaN();
    fits_read_col(f, TDOUBLE, real_col, 1, 1, K * B, &dnul, re.data_ptr<double>(), &anynul,
                  &status);
    fits_read_col(f, TDOUBLE, imag_col, 1, 1, K * B, &dnul, im.data_ptr<double>(), &anynul,
                  &status);
    if (status) throw_fits(status, what);
  }
  c.classes = std::move(classes);
  re = re.transpose(0, 1).contiguous(); // (B, K)
  im = im.transpose(0, 1).contiguous();
  c.values = cplx ? at::complex(re, im) : re;
  file.close(what);
  return c;
}

// ---- Tables -------------------------------------------------------------------------------------

namespace {

bool is_column_keyword(const std::string& key) {
  static const char* const prefixes[] = {"TTYPE", "TFORM", "TUNIT", "TCOMM", "TDISP",
                                         "TNULL", "TSCAL", "TZERO", "TDIM",  "TBCOL",
                                         "TLMIN", "TLMAX", "TDMIN", "TDMAX"};
  for (const char* p : prefixes) {
    const std::size_t n = std::strlen(p);
    if (key.size() > n && key.compare(0, n, p) == 0 &&
        std::all_of(key.begin() + static_cast<std::ptrdiff_t>(n), key.end(),
                    [](unsigned char c) { return std::isdigit(c); }))
      return true;
  }
  return false;
}

/// Appends a binary-table HDU holding `table` at the current position of `f`.
void write_table_hdu(fitsfile* f, const Table& table, const std::string& extname,
                     const FitsHeader& header, const std::string& what) {
  if (extname.empty()) throw ValueError(what + ": a table extension needs a name (EXTNAME)");
  const auto ncols = table.columns.size();
  if (ncols == 0) throw ValueError(what + ": table '" + extname + "' has no columns");
  if (ncols > 999) throw ValueError(what + ": FITS tables hold at most 999 columns");
  const int64_t rows = table.rows();
  std::vector<std::string> names, forms, units;
  std::set<std::string> seen;
  for (const auto& c : table.columns) {
    if (c.name.empty() || c.name.size() > 68 || !seen.insert(upper(c.name)).second)
      throw ValueError(
          what + ": column name '" + c.name +
          "' is empty, longer than 68 characters or differs from another only in case");
    if (c.rows() != rows)
      throw ShapeError(what + ": column '" + c.name + "' has " + std::to_string(c.rows()) +
                       " rows, the table " + std::to_string(rows));
    names.push_back(c.name);
    units.push_back(c.unit);
    if (c.is_text()) {
      std::size_t width = 1;
      for (const auto& t : c.text) width = std::max(width, t.size());
      forms.push_back(std::to_string(width) + "A");
    } else {
      const int64_t repeat = c.values.dim() == 2 ? c.values.size(1) : 1;
      if (repeat < 1) throw ShapeError(what + ": column '" + c.name + "' has vectors of length 0");
      forms.push_back(std::to_string(repeat) + (c.values.scalar_type() == at::kLong ? "K" : "D"));
    }
  }
  std::vector<char*> ttype, tform, tunit;
  for (auto& n : names) ttype.push_back(n.data());
  for (auto& x : forms) tform.push_back(x.data());
  for (auto& u : units) tunit.push_back(u.data());
  int status = 0;
  std::string name = extname;
  fits_create_tbl(f, BINARY_TBL, static_cast<LONGLONG>(rows), static_cast<int>(ncols), ttype.data(),
                  tform.data(), tunit.data(), name.c_str(), &status);
  for (std::size_t j = 0; j < ncols; ++j) {
    const auto& c = table.columns[j];
    if (c.description.empty()) continue;
    const std::string key = "TCOMM" + std::to_string(j + 1);
    std::string text = c.description.substr(0, 68);
    fits_write_key_str(f, key.c_str(), text.c_str(), nullptr, &status);
  }
  for (const auto& card : header.cards()) fits_write_record(f, card.c_str(), &status);
  fits_write_date(f, &status);
  if (status) throw_fits(status, what);
  if (rows > 0) {
    for (std::size_t j = 0; j < ncols; ++j) {
      const auto& c = table.columns[j];
      const int col = static_cast<int>(j + 1);
      if (c.is_text()) {
        std::size_t width = 1;
        for (const auto& t : c.text) width = std::max(width, t.size());
        write_text_column(f, col, c.text, width, &status);
      } else {
        const at::Tensor v = c.values.contiguous();
        if (v.scalar_type() == at::kLong)
          fits_write_col(f, TLONGLONG, col, 1, 1, v.numel(), v.data_ptr<int64_t>(), &status);
        else
          fits_write_col(f, TDOUBLE, col, 1, 1, v.numel(), v.data_ptr<double>(), &status);
      }
    }
  }
  fits_write_chksum(f, &status);
  if (status) throw_fits(status, what);
}

} // namespace

void write_fits_table(const std::string& path, const Table& table, const std::string& extname,
                      const FitsHeader& primary_header, const FitsHeader& table_header) {
  FitsWriter writer(path);
  writer.add_empty_primary(primary_header);
  writer.add_table(extname, table, table_header);
  writer.commit();
}

Table read_fits_table(const std::string& spec, FitsHeader* header) {
  check_exists(spec);
  const std::string what = "cannot read a table from FITS '" + spec + "'";
  FitsFile file;
  int status = 0;
  fits_clear_errmsg();
  if (fits_open_table(file.out(), spec.c_str(), READONLY, &status)) {
    if (status == NOT_TABLE) {
      fits_clear_errmsg();
      throw FormatError(what + ": the HDU is not a table");
    }
    if (status == END_OF_FILE || status == BAD_HDU_NUM || status == URL_PARSE_ERROR) {
      fits_clear_errmsg();
      throw_if_no_such_hdu(spec);
    }
    throw_fits(status, what);
  }
  fitsfile* f = file.get();
  check_table_fits(f, what);
  int ncols = 0;
  LONGLONG nrows = 0;
  fits_get_num_cols(f, &ncols, &status);
  fits_get_num_rowsll(f, &nrows, &status);
  if (status) throw_fits(status, what);
  Table table;
  for (int col = 1; col <= ncols; ++col) {
    char key[FLEN_KEYWORD], name[FLEN_VALUE] = {0}, unit[FLEN_VALUE] = {0},
                            comment[FLEN_VALUE] = {0};
    std::snprintf(key, sizeof key, "TTYPE%d", col);
    if (fits_read_key(f, TSTRING, key, name, nullptr, &status)) throw_fits(status, what);
    std::snprintf(key, sizeof key, "TUNIT%d", col);
    if (fits_read_key(f, TSTRING, key, unit, nullptr, &status) == KEY_NO_EXIST) status = 0;
    std::snprintf(key, sizeof key, "TCOMM%d", col);
    if (fits_read_key(f, TSTRING, key, comment, nullptr, &status) == KEY_NO_EXIST) status = 0;
    fits_clear_errmsg();
    int type = 0;
    LONGLONG repeat = 0, width = 0;
    fits_get_eqcoltypell(f, col, &type, &repeat, &width, &status);
    if (status) throw_fits(status, what);
    const std::string cname = name;
    int anynul = 0;
    if (type == TSTRING) {
      std::vector<std::string> buf(static_cast<std::size_t>(nrows),
                                   std::string(static_cast<std::size_t>(width) + 1, '\0'));
      std::vector<char*> ptr;
      for (auto& b : buf) ptr.push_back(b.data());
      char nul[] = "";
      if (nrows > 0) fits_read_col_str(f, col, 1, 1, nrows, nul, ptr.data(), &anynul, &status);
      if (status) throw_fits(status, what);
      std::vector<std::string> text;
      for (auto* p : ptr) {
        std::string t = p;
        while (!t.empty() && t.back() == ' ') t.pop_back();
        text.push_back(std::move(t));
      }
      table.add_text(cname, std::move(text), comment);
      continue;
    }
    if (type < 0 || type == TBIT || type == TCOMPLEX || type == TDBLCOMPLEX)
      throw FormatError(what + ": column '" + cname +
                        "' has an unsupported type (variable-length, bit or complex)");
    const std::vector<int64_t> shape =
        repeat == 1 ? std::vector<int64_t>{nrows} : std::vector<int64_t>{nrows, repeat};
    const LONGLONG n = nrows * repeat;
    at::Tensor values;
    if (type == TLOGICAL) {
      std::vector<char> flags(static_cast<std::size_t>(n));
      char nul = 0;
      if (n > 0) fits_read_col(f, TLOGICAL, col, 1, 1, n, &nul, flags.data(), &anynul, &status);
      values = at::empty(shape, at::kLong);
      for (LONGLONG i = 0; i < n; ++i) values.data_ptr<int64_t>()[i] = flags[i] ? 1 : 0;
    } else if (type == TFLOAT || type == TDOUBLE) {
      values = at::empty(shape, at::kDouble);
      double nul = std::numeric_limits<double>::quiet_NaN();
      if (n > 0)
        fits_read_col(f, TDOUBLE, col, 1, 1, n, &nul, values.data_ptr<double>(), &anynul, &status);
    } else {
      values = at::empty(shape, at::kLong);
      LONGLONG nul = 0;
      if (n > 0)
        fits_read_col(f, TLONGLONG, col, 1, 1, n, &nul, values.data_ptr<int64_t>(), &anynul,
                      &status);
    }
    if (status) throw_fits(status, what);
    table.add(cname, values, unit, comment);
  }
  if (header) {
    int nkeys = 0;
    fits_get_hdrspace(f, &nkeys, nullptr, &status);
    for (int i = 1; i <= nkeys && !status; ++i) {
      char card[FLEN_CARD] = {0};
      if (fits_read_record(f, i, card, &status)) break;
      if (!is_column_keyword(card_keyword(card))) header->add_card(card);
    }
    if (status) throw_fits(status, what);
  }
  file.close(what);
  return table;
}

// ---- FitsWriter ---------------------------------------------------------------------------------

struct FitsWriter::Impl {
  std::string path, what;
  detail::AtomicFile out;
  FitsFile file;
  struct Hdu {
    bool image = false;
    std::vector<int64_t> shape; // C order, images only
    FitsPixelType type = FitsPixelType::Float32;
  };
  std::vector<Hdu> hdus;
  bool committed = false;

  explicit Impl(const std::string& p) : path(p), what("cannot write FITS '" + p + "'"), out(p) {
    fits_clear_errmsg();
    create_file(file, out, what);
  }
  void move_to(int hdu) {
    int status = 0, type = 0;
    if (fits_movabs_hdu(file.get(), hdu + 1, &type, &status)) throw_fits(status, what);
  }
};

FitsWriter::FitsWriter(const std::string& path) : impl_(std::make_unique<Impl>(path)) {}

FitsWriter::~FitsWriter() = default;

void FitsWriter::add_empty_primary(const FitsHeader& header) {
  if (!impl_->hdus.empty())
    throw ValueError(impl_->what + ": the empty primary HDU must be the first HDU");
  fitsfile* f = impl_->file.get();
  int status = 0;
  fits_create_img(f, BYTE_IMG, 0, nullptr, &status);
  for (const auto& card : header.cards()) fits_write_record(f, card.c_str(), &status);
  fits_write_date(f, &status);
  fits_write_chksum(f, &status);
  if (status) throw_fits(status, impl_->what);
  impl_->hdus.push_back({});
}

int FitsWriter::add_image(const std::string& name, const at::Tensor& data, const FitsHeader& header,
                          FitsPixelType type) {
  if (!impl_->hdus.empty() && name.empty())
    throw ValueError(impl_->what + ": every extension needs a name (EXTNAME)");
  if (impl_->hdus.size() > 0) impl_->move_to(static_cast<int>(impl_->hdus.size()) - 1);
  write_image_hdu(impl_->file.get(), data, header, type, name, impl_->what);
  impl_->hdus.push_back(
      {true, std::vector<int64_t>(data.sizes().begin(), data.sizes().end()), type});
  return static_cast<int>(impl_->hdus.size()) - 1;
}

int FitsWriter::add_image_shape(const std::string& name, const std::vector<int64_t>& shape,
                                const FitsHeader& header, FitsPixelType type) {
  if (!impl_->hdus.empty() && name.empty())
    throw ValueError(impl_->what + ": every extension needs a name (EXTNAME)");
  if (shape.size() < 2 || shape.size() > 4)
    throw ShapeError(impl_->what + ": images have 2 to 4 axes, got " +
                     std::to_string(shape.size()));
  for (auto s : shape)
    if (s < 1)
      throw ShapeError(impl_->what + ": image axes must be >= 1, got " + std::to_string(s));
  if (impl_->hdus.size() > 0) impl_->move_to(static_cast<int>(impl_->hdus.size()) - 1);
  fitsfile* f = impl_->file.get();
  const bool f64 = type == FitsPixelType::Float64;
  std::vector<LONGLONG> naxes(shape.rbegin(), shape.rend());
  int status = 0;
  fits_create_imgll(f, f64 ? DOUBLE_IMG : FLOAT_IMG, static_cast<int>(naxes.size()), naxes.data(),
                    &status);
  for (const auto& card : header.cards()) fits_write_record(f, card.c_str(), &status);
  if (!name.empty()) {
    std::string n = name;
    fits_update_key_str(f, "EXTNAME", n.data(), "name of this HDU", &status);
  }
  fits_write_date(f, &status);
  // Placeholders, updated in place by commit() once the data are written (no header growth).
  fits_write_key_str(f, "CHECKSUM", "0000000000000000", "HDU checksum (written at the end)",
                     &status);
  fits_write_key_str(f, "DATASUM", "0", "data unit checksum (written at the end)", &status);
  if (status) throw_fits(status, impl_->what);
  impl_->hdus.push_back({true, shape, type});
  return static_cast<int>(impl_->hdus.size()) - 1;
}

void FitsWriter::write_rows(int hdu, int64_t first, const at::Tensor& rows) {
  if (hdu < 0 || hdu >= static_cast<int>(impl_->hdus.size()) || !impl_->hdus[hdu].image)
    throw ValueError(impl_->what + ": HDU " + std::to_string(hdu) +
                     " is not an image of this file");
  const auto& h = impl_->hdus[hdu];
  const std::vector<int64_t> trailing(h.shape.begin() + 1, h.shape.end());
  if (rows.dim() != static_cast<int64_t>(h.shape.size()) ||
      std::vector<int64_t>(rows.sizes().begin() + 1, rows.sizes().end()) != trailing)
    throw ShapeError(impl_->what + ": rows of shape " + std::to_string(rows.dim()) +
                     "D do not match HDU " + std::to_string(hdu) + "'s shape");
  if (first < 0 || first + rows.size(0) > h.shape[0])
    throw ShapeError(impl_->what + ": rows " + std::to_string(first) + " to " +
                     std::to_string(first + rows.size(0)) + " overflow the " +
                     std::to_string(h.shape[0]) + " of HDU " + std::to_string(hdu));
  if (rows.numel() == 0) return;
  const bool f64 = h.type == FitsPixelType::Float64;
  const at::Tensor pixels = rows.detach().to(at::kCPU, f64 ? at::kDouble : at::kFloat).contiguous();
  impl_->move_to(hdu);
  const LONGLONG per_row = pixels.numel() / rows.size(0);
  int status = 0;
  fits_write_img(impl_->file.get(), f64 ? TDOUBLE : TFLOAT, first * per_row + 1,
                 static_cast<LONGLONG>(pixels.numel()), const_cast<void*>(pixels.data_ptr()),
                 &status);
  if (status) throw_fits(status, impl_->what);
}

int FitsWriter::add_table(const std::string& extname, const Table& table,
                          const FitsHeader& header) {
  if (impl_->hdus.empty()) add_empty_primary({});
  impl_->move_to(static_cast<int>(impl_->hdus.size()) - 1);
  write_table_hdu(impl_->file.get(), table, extname, header, impl_->what);
  impl_->hdus.push_back({});
  return static_cast<int>(impl_->hdus.size()) - 1;
}

void FitsWriter::commit() {
  if (impl_->hdus.empty()) add_empty_primary({});
  for (int i = 0; i < static_cast<int>(impl_->hdus.size()); ++i) {
    impl_->move_to(i);
    int status = 0;
    fits_write_chksum(impl_->file.get(), &status);
    if (status) throw_fits(status, impl_->what);
  }
  impl_->file.close(impl_->what);
  impl_->out.commit();
  impl_->committed = true;
}

} // namespace demix
