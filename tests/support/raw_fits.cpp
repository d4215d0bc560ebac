#include "support/raw_fits.hpp"

#include <bit>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace demix::test {

namespace {

std::string card(const std::string& text) {
  std::string c = text.substr(0, 80);
  c.resize(80, ' ');
  return c;
}

std::string value_card(const std::string& key, const std::string& value) {
  std::string k = key;
  k.resize(8, ' ');
  std::string v = value;
  if (v.size() < 20) v = std::string(20 - v.size(), ' ') + v; // fixed format: right-justified
  return card(k + "= " + v);
}

template <typename T> void put_be(std::string& out, T v) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  for (int i = sizeof(T) - 1; i >= 0; --i) out.push_back(static_cast<char>(bytes[i]));
}

void pad(std::string& s, char fill) {
  while (s.size() % 2880) s.push_back(fill);
}

} // namespace

void write_raw_fits(const std::string& path, const std::vector<RawHdu>& hdus,
                    std::size_t truncate) {
  std::string out;
  for (std::size_t h = 0; h < hdus.size(); ++h) {
    const RawHdu& hdu = hdus[h];
    std::string header = h == 0 ? value_card("SIMPLE", "T") : card("XTENSION= 'IMAGE   '");
    header += value_card("BITPIX", std::to_string(hdu.bitpix));
    header += value_card("NAXIS", std::to_string(hdu.naxes.size()));
    for (std::size_t i = 0; i < hdu.naxes.size(); ++i)
      header += value_card("NAXIS" + std::to_string(i + 1), std::to_string(hdu.naxes[i]));
    if (h == 0)
      header += value_card("EXTEND", "T");
    else
      header += value_card("PCOUNT", "0") + value_card("GCOUNT", "1");
    for (const auto& c : hdu.cards) header += card(c);
    header += card("END");
    pad(header, ' ');
    out += header;

    std::string data;
    for (double v : hdu.values) {
      switch (hdu.bitpix) {
      case 8: data.push_back(static_cast<char>(static_cast<unsigned char>(v))); break;
      case 16: put_be(data, static_cast<std::int16_t>(v)); break;
      case 32: put_be(data, static_cast<std::int32_t>(v)); break;
      case 64: put_be(data, static_cast<std::int64_t>(v)); break;
      case -32: put_be(data, static_cast<float>(v)); break;
      case -64: put_be(data, v); break;
      default: throw std::invalid_argument("bad BITPIX");
      }
    }
    pad(data, '\0');
    out += data;
  }
  out.resize(out.size() - std::min(truncate, out.size()));
  std::ofstream(path, std::ios::binary).write(out.data(), static_cast<std::streamsize>(out.size()));
}

} // namespace demix::test
