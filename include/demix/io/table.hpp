#pragma once
// Catalogues as named columns (galaxy truth tables, detected positions): written and read as CSV
// and ECSV here and as FITS binary tables by fits.hpp (write_fits_table / read_fits_table);
// write_table and read_table choose among the three.

#include <ATen/core/TensorBody.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// One named column: numbers in `values` (int64 or float64, CPU; (rows) or (rows, repeat) for a
/// vector per row) or text in `text` (then `values` is undefined).
struct Column {
  std::string name;
  at::Tensor values;             // (rows) or (rows, repeat) int64 / float64
  std::vector<std::string> text; // one entry per row, for text columns
  std::string unit;              // optional (FITS TUNITn), e.g. "arcsec", "electron"
  std::string description;       // optional (FITS TCOMMn / a comment card)

  bool is_text() const { return !values.defined(); }
  int64_t rows() const;
};

class Table {
public:
  std::vector<Column> columns;
  /// Table-level facts (key, value): ECSV "meta", FITS keywords of the table HDU (keys of at
  /// most 8 characters); not in CSV.
  std::vector<std::pair<std::string, std::string>> meta;

  /// Appends a numeric column (a copy on the CPU as int64 for integer tensors, else float64).
  /// ShapeError if its row count differs from the columns already present or it is not 1D/2D;
  /// ValueError if the name is empty or already used.
  Table& add(std::string name, const at::Tensor& values, std::string unit = {},
             std::string description = {});
  /// Appends a text column.
  Table& add_text(std::string name, std::vector<std::string> text, std::string description = {});

  int64_t rows() const { return columns.empty() ? 0 : columns.front().rows(); }
  bool has(std::string_view name) const;
  /// The column called `name`; ValueError naming the columns when there is none.
  const Column& column(std::string_view name) const;
};

/// Writes `table` as CSV: a header line with the column names, then one line per row; numbers in
/// shortest round-trip form (float64 values read back exactly), vector columns as name_0,
/// name_1, ...; text quoted when it holds a comma, quote or newline. Atomic (see io.hpp).
void write_csv(const std::string& path, const Table& table);

/// Reads a CSV file with a header line. Columns whose every field parses as an integer become
/// int64, as a number float64, otherwise text; empty lines are skipped. IoError if missing,
/// FormatError (naming the line) for a row with the wrong number of fields or an empty header.
Table read_csv(const std::string& path);

/// Writes `table` as ECSV 1.0 (astropy's self-describing text table): a commented YAML header
/// with each column's name, datatype, unit and description and the table's meta, then CSV rows.
/// Vector columns become name_0, name_1, ... as in CSV. Atomic.
void write_ecsv(const std::string& path, const Table& table);
/// Reads ECSV (',' or ' ' delimited): columns as read_csv's, with the header's units and
/// descriptions. FormatError unless the first line is "# %ECSV <version>".
Table read_ecsv(const std::string& path);

enum class TableFormat { Csv, Ecsv, Fits };
/// The format an output catalogue's name asks for: .csv, .ecsv, .fits/.fit/.fts (optionally
/// .gz). ValueError for any other name.
TableFormat table_format_for_output(const std::string& path);
/// write_csv, write_ecsv or write_fits_table (extension `extname`, meta as keywords) by name.
void write_table(const std::string& path, const Table& table,
                 const std::string& extname = "CATALOG");
/// A catalogue in any of the three formats, recognised from its content: FITS (a binary table:
/// "file.fits[NAME]" or the first table HDU), ECSV, else CSV.
Table read_table(const std::string& spec);

} // namespace demix
#pragma GCC visibility pop
