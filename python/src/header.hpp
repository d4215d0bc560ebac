#pragma once
// FITS headers as the Python package passes them: (keyword, value, comment) entries, COMMENT and
// HISTORY with their text as value (python/demix/io.py's Header._entries()).

#include <demix/io/fits.hpp>

#include <string>
#include <tuple>
#include <variant>
#include <vector>

namespace demix::python {

using KeywordValue = std::variant<bool, long long, double, std::string>;
using Entry = std::tuple<std::string, KeywordValue, std::string>;

/// The header the entries describe; ValueError for COMMENT or HISTORY entries that are not text.
FitsHeader header_from(const std::vector<Entry>& entries);

} // namespace demix::python
