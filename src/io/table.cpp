#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/table.hpp>

#include "io/detail/files.hpp"

#include <ATen/ATen.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace demix {

int64_t Column::rows() const {
  return is_text() ? static_cast<int64_t>(text.size()) : values.size(0);
}

namespace {

void check_new_column(const Table& t, const std::string& name, int64_t rows) {
  if (name.empty()) throw ValueError("table columns need a name");
  if (t.has(name)) throw ValueError("table column '" + name + "' added twice");
  if (!t.columns.empty() && rows != t.rows())
    throw ShapeError("table column '" + name + "' has " + std::to_string(rows) +
                     " rows, the table has " + std::to_string(t.rows()));
}

std::string format_number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string quote_if_needed(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// Splits one record (RFC 4180 quoting) at `delimiter`; `in` may supply continuation lines for
/// quoted newlines. With ' ' (ECSV's default), runs of spaces separate fields.
std::vector<std::string> split_record(std::string line, std::istream& in, int64_t& line_no,
                                      char delimiter = ',') {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0;; ++i) {
    if (i == line.size()) {
      if (quoted) {
        std::string next;
        if (!std::getline(in, next)) break;
        ++line_no;
        field += '\n';
        line = std::move(next);
        i = static_cast<std::size_t>(-1);
        continue;
      }
      break;
    }
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
        field += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        field += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == delimiter) {
      if (delimiter == ' ' && (i == 0 || line[i - 1] == ' ')) continue; // a run of spaces
      fields.push_back(std::move(field));
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return fields;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

} // namespace

Table& Table::add(std::string name, const at::Tensor& values, std::string unit,
                  std::string description) {
  if (!values.defined() || values.dim() < 1 || values.dim() > 2)
    throw ShapeError("table column '" + name + "' must be a 1D (rows) or 2D (rows, repeat) tensor");
  check_new_column(*this, name, values.size(0));
  const bool integral = !values.is_floating_point() && !values.is_complex();
  Column c;
  c.name = std::move(name);
  c.values = values.detach().to(at::kCPU, integral ? at::kLong : at::kDouble).contiguous().clone();
  c.unit = std::move(unit);
  c.description = std::move(description);
  columns.push_back(std::move(c));
  return *this;
}

Table& Table::add_text(std::string name, std::vector<std::string> text, std::string description) {
  check_new_column(*this, name, static_cast<int64_t>(text.size()));
  Column c;
  c.name = std::move(name);
  c.text = std::move(text);
  c.description = std::move(description);
  columns.push_back(std::move(c));
  return *this;
}

bool Table::has(std::string_view name) const {
  for (const auto& c : columns)
    if (c.name == name) return true;
  return false;
}

const Column& Table::column(std::string_view name) const {
  std::string names;
  for (const auto& c : columns) {
    if (c.name == name) return c;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  throw ValueError("the table has no column '" + std::string(name) + "' (columns: " + names + ")");
}

namespace {

void write_csv_text(std::ostream& out, const Table& table) {
  // Header.
  bool first = true;
  for (const auto& c : table.columns) {
    const int64_t repeat = c.is_text() || c.values.dim() == 1 ? 1 : c.values.size(1);
    for (int64_t j = 0; j < repeat; ++j) {
      out << (first ? "" : ",")
          << quote_if_needed(repeat == 1 && (c.is_text() || c.values.dim() == 1)
                                 ? c.name
                                 : c.name + "_" + std::to_string(j));
      first = false;
    }
  }
  out << "\n";
  for (int64_t r = 0; r < table.rows(); ++r) {
    first = true;
    for (const auto& c : table.columns) {
      if (c.is_text()) {
        out << (first ? "" : ",") << quote_if_needed(c.text[r]);
        first = false;
        continue;
      }
      const at::Tensor row = c.values.dim() == 1 ? c.values.slice(0, r, r + 1) : c.values[r];
      const int64_t n = row.numel();
      for (int64_t j = 0; j < n; ++j) {
        out << (first ? "" : ",");
        if (row.scalar_type() == at::kLong)
          out << row.data_ptr<int64_t>()[j];
        else
          out << format_number(row.data_ptr<double>()[j]);
        first = false;
      }
    }
    out << "\n";
  }
}

} // namespace

void write_csv(const std::string& path, const Table& table) {
  std::ostringstream out;
  write_csv_text(out, table);
  write_text_file(path, out.str());
}

namespace {

/// The columns of delimited text after its header line: integers, numbers or text per column.
/// Lines starting with '#' are skipped when `comments` (ECSV's header).
Table parse_delimited(std::istream& in, const std::string& path, char delimiter, bool comments,
                      const char* format) {
  std::string line;
  int64_t line_no = 0;
  std::vector<std::string> header;
  const auto skip = [&](const std::string& l) {
    return trim(l).empty() || (comments && !l.empty() && l[0] == '#');
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (skip(line)) continue;
    header = split_record(line, in, line_no, delimiter);
    break;
  }
  if (header.empty())
    throw FormatError("'" + path + "' is empty: a " + format + " header line is needed");
  for (auto& h : header) h = trim(h);
  std::vector<std::vector<std::string>> cells(header.size());
  while (std::getline(in, line)) {
    ++line_no;
    if (skip(line)) continue;
    const auto fields = split_record(line, in, line_no, delimiter);
    if (fields.size() != header.size())
      throw FormatError("'" + path + "' line " + std::to_string(line_no) + " has " +
                        std::to_string(fields.size()) + " fields, the header has " +
                        std::to_string(header.size()));
    for (std::size_t j = 0; j < fields.size(); ++j) cells[j].push_back(trim(fields[j]));
  }
  Table table;
  for (std::size_t j = 0; j < header.size(); ++j) {
    const auto& col = cells[j];
    const auto rows = static_cast<int64_t>(col.size());
    bool all_int = true, all_num = true;
    std::vector<int64_t> ints(rows);
    std::vector<double> nums(rows);
    for (int64_t r = 0; r < rows; ++r) {
      const std::string& s = col[r];
      const char* end = s.data() + s.size();
      const char* start = s.data() + (s.size() > 0 && s[0] == '+' ? 1 : 0);
      if (all_int) {
        const auto res = std::from_chars(start, end, ints[r]);
        all_int = !s.empty() && res.ec == std::errc() && res.ptr == end;
      }
      const auto res = std::from_chars(start, end, nums[r]);
      if (s.empty() || res.ec != std::errc() || res.ptr != end) {
        all_num = false;
        break;
      }
    }
    if (header[j].empty())
      throw FormatError("'" + path + "': column " + std::to_string(j + 1) + " has no name");
    if (all_num && rows > 0) {
      if (all_int)
        table.add(header[j], at::tensor(at::ArrayRef<int64_t>(ints), at::kLong));
      else
        table.add(header[j], at::tensor(at::ArrayRef<double>(nums), at::kDouble));
    } else {
      table.add_text(header[j], col);
    }
  }
  return table;
}

std::ifstream open_text(const std::string& path) {
  detail::require_input_file(path, path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read '" + path + "'");
  return in;
}

/// The value of `key` in an ECSV column entry "- {name: x, unit: pix, datatype: float64}" (plain
/// or quoted), or "" when absent.
std::string yaml_field(const std::string& entry, const std::string& key) {
  const auto k = entry.find(key + ": ");
  if (k == std::string::npos) return {};
  std::size_t i = k + key.size() + 2;
  if (i < entry.size() && (entry[i] == '\'' || entry[i] == '"')) {
    const char q = entry[i];
    std::string v;
    for (++i; i < entry.size(); ++i) {
      if (entry[i] == q && q == '\'' && i + 1 < entry.size() && entry[i + 1] == '\'') {
        v += q, ++i;
      } else if (entry[i] == q) {
        break;
      } else {
        v += entry[i];
      }
    }
    return v;
  }
  const auto end = entry.find_first_of(",}", i);
  return trim(entry.substr(i, end == std::string::npos ? std::string::npos : end - i));
}

/// A YAML single-quoted scalar.
std::string yaml_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace

Table read_csv(const std::string& path) {
  std::ifstream in = open_text(path);
  return parse_delimited(in, path, ',', false, "CSV");
}

Table read_ecsv(const std::string& path) {
  std::ifstream in = open_text(path);
  std::string line;
  if (!std::getline(in, line) || line.rfind("# %ECSV", 0) != 0)
    throw FormatError("'" + path + "' is not ECSV: its first line is not '# %ECSV <version>'");
  char delimiter = ' ';
  std::vector<std::pair<std::string, std::string>> units; // column name, unit
  std::vector<std::string> descriptions;
  while (in.peek() == '#' && std::getline(in, line)) {
    const auto d = line.find("delimiter: ");
    if (d != std::string::npos) {
      const std::string v = yaml_field(line, "delimiter");
      if (v == "," || v == " ")
        delimiter = v[0];
      else
        throw FormatError("'" + path + "': ECSV delimiter '" + v + "' (only ',' and ' ' exist)");
    }
    if (line.find("- {name: ") != std::string::npos)
      units.emplace_back(yaml_field(line, "name"), yaml_field(line, "unit")),
          descriptions.push_back(yaml_field(line, "description"));
  }
  Table t = parse_delimited(in, path, delimiter, true, "ECSV");
  for (std::size_t i = 0; i < units.size(); ++i)
    for (Column& c : t.columns)
      if (c.name == units[i].first) c.unit = units[i].second, c.description = descriptions[i];
  return t;
}

void write_ecsv(const std::string& path, const Table& table) {
  std::ostringstream out;
  out << "# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype:\n";
  std::vector<std::string> names;
  for (const auto& c : table.columns) {
    const int64_t repeat = c.is_text() || c.values.dim() == 1 ? 1 : c.values.size(1);
    for (int64_t j = 0; j < repeat; ++j) {
      const std::string name =
          c.is_text() || c.values.dim() == 1 ? c.name : c.name + "_" + std::to_string(j);
      names.push_back(name);
      out << "# - {name: " << yaml_quote(name);
      if (!c.unit.empty()) out << ", unit: " << yaml_quote(c.unit);
      out << ", datatype: "
          << (c.is_text()                           ? "string"
              : c.values.scalar_type() == at::kLong ? "int64"
                                                    : "float64");
      if (!c.description.empty()) out << ", description: " << yaml_quote(c.description);
      out << "}\n";
    }
  }
  if (!table.meta.empty()) {
    out << "# meta:\n";
    for (const auto& [key, value] : table.meta)
      out << "#   " << yaml_quote(key) << ": " << yaml_quote(value) << "\n";
  }
  out << "# schema: astropy-2.0\n";
  // The data: CSV rows under the header (write_csv's layout, its header line included).
  Table plain = table;
  for (Column& c : plain.columns) c.unit.clear(), c.description.clear();
  std::ostringstream rows;
  write_csv_text(rows, plain);
  out << rows.str();
  write_text_file(path, out.str());
}

TableFormat table_format_for_output(const std::string& path) {
  const std::string p = lower(path);
  if (ends_with(p, ".csv")) return TableFormat::Csv;
  if (ends_with(p, ".ecsv")) return TableFormat::Ecsv;
  for (const char* e : {".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz"})
    if (ends_with(p, e)) return TableFormat::Fits;
  throw ValueError("catalogue '" + path +
                   "': give a name ending in .fits, .ecsv or .csv (the format follows the name)");
}

void write_table(const std::string& path, const Table& table, const std::string& extname) {
  switch (table_format_for_output(path)) {
  case TableFormat::Csv: return write_csv(path, table);
  case TableFormat::Ecsv: return write_ecsv(path, table);
  case TableFormat::Fits: {
    FitsHeader h;
    for (const auto& [key, value] : table.meta)
      if (key.size() <= 8) h.set(key, std::string_view(value.substr(0, 68)), "");
    return write_fits_table(path, table, extname, {}, h);
  }
  }
}

Table read_table(const std::string& spec) {
  // FITS by content (or a name with an HDU selector), as images are recognised.
  const auto bracket = spec.find('[');
  if (bracket != std::string::npos && bracket > 0 && !detail::path_exists(spec) &&
      detail::path_exists(spec.substr(0, bracket)))
    return read_fits_table(spec);
  if (detail::path_exists(spec) && !detail::is_folder(spec)) {
    std::ifstream probe(spec, std::ios::binary);
    char magic[9] = {};
    probe.read(magic, 9);
    const std::string m(magic, static_cast<std::size_t>(probe.gcount()));
    if (m == "SIMPLE  =" || m.rfind("\x1f\x8b", 0) == 0) return read_fits_table(spec);
  }
  std::ifstream in = open_text(spec);
  char head[8] = {};
  in.read(head, 7);
  return std::string(head, static_cast<std::size_t>(in.gcount())) == "# %ECSV" ? read_ecsv(spec)
                                                                               : read_csv(spec);
}

} // namespace demix
