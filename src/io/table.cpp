#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/table.hpp>

#include "io/detail/files.hpp"

#include <ATen/ATen.h>

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

/// Splits one CSV record (RFC 4180 quoting); `in` may supply continuation lines for quoted
/// newlines.
std::vector<std::string> split_record(std::string line, std::istream& in, int64_t& line_no) {
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
    } else if (c == ',') {
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

void write_csv(const std::string& path, const Table& table) {
  std::ostringstream out;
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
  write_text_file(path, out.str());
}

Table read_csv(const std::string& path) {
  detail::require_input_file(path, path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot read '" + path + "'");
  std::string line;
  int64_t line_no = 0;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    header = split_record(line, in, line_no);
    break;
  }
  if (header.empty()) throw FormatError("'" + path + "' is empty: a CSV header line is needed");
  for (auto& h : header) h = trim(h);
  std::vector<std::vector<std::string>> cells(header.size());
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    const auto fields = split_record(line, in, line_no);
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

} // namespace demix
