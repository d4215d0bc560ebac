#pragma once
// Writes FITS files byte by byte, straight from the FITS 4.0 standard (80-character cards in
// 2880-byte blocks, big-endian pixels), independently of CFITSIO: an oracle for demix's reader.

#include <cstdint>
#include <string>
#include <vector>

namespace demix::test {

struct RawHdu {
  int bitpix = -32;               // 8, 16, 32, 64, -32, -64
  std::vector<long> naxes;        // FITS order: NAXIS1 (width) first; empty = no data
  std::vector<double> values;     // stored values (before BSCALE/BZERO), C order of reversed naxes
  std::vector<std::string> cards; // extra cards, e.g. "BSCALE  = 2.0", "EXTNAME = 'SCI'"
};

/// Writes the HDUs (first one primary). `truncate_bytes` > 0 cuts the file short by that much.
void write_raw_fits(const std::string& path, const std::vector<RawHdu>& hdus,
                    std::size_t truncate_bytes = 0);

} // namespace demix::test
