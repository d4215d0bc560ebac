#include "common.hpp"

#include <demix/core/errors.hpp>

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <sys/stat.h>

#include <unistd.h>

namespace demix::cli {

void add_global_options(CLI::App& app, Globals& g) {
  const std::map<std::string, DeviceKind> devices{
      {"auto", DeviceKind::Auto}, {"cpu", DeviceKind::Cpu}, {"cuda", DeviceKind::Cuda}};
  const std::map<std::string, Precision> dtypes{{"float32", Precision::Float32},
                                                {"float64", Precision::Float64}};
  app.add_option("--device", g.context.device, "Compute device: auto (CUDA if present), cpu, cuda")
      ->transform(choice(devices))
      ->default_str("auto");
  app.add_option("--dtype", g.context.precision, "Compute precision: float32 or float64")
      ->transform(choice(dtypes))
      ->default_str("float32");
  app.add_option("--threads", g.context.threads, "CPU threads (0 = one per core), at most 1024")
      ->check(in_range(0, 1024))
      ->default_str("0");
  app.add_flag("-q,--quiet", g.quiet, "Print only errors");
}

Context make_context(const Globals& g) { return Context(g.context); }

namespace {

std::string number_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

/// A check that the value is a number for which `ok` holds; else "must be <what>, got 'value'".
CLI::Validator number_check(std::function<bool(double)> ok, const std::string& what) {
  return CLI::Validator(
      [ok, what](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !ok(v))
          return "must be " + what + ", got '" + value + "'";
        return {};
      },
      what);
}

} // namespace

CLI::Validator at_least(double lo) {
  return number_check([lo](double v) { return v >= lo; }, "a number >= " + number_text(lo));
}

CLI::Validator finite() {
  return number_check([](double v) { return std::isfinite(v); }, "a finite number");
}

CLI::Validator positive() {
  return number_check([](double v) { return v > 0 && std::isfinite(v); }, "a number > 0");
}

CLI::Validator in_range(double lo, double hi) {
  return number_check([lo, hi](double v) { return v >= lo && v <= hi; },
                      "a number in [" + number_text(lo) + ", " + number_text(hi) + "]");
}

CLI::Option* add_nan_option(CLI::App& cmd, NonFinitePolicy& policy) {
  const std::map<std::string, NonFinitePolicy> policies{{"reject", NonFinitePolicy::Reject},
                                                        {"keep", NonFinitePolicy::Keep},
                                                        {"zero", NonFinitePolicy::Zero},
                                                        {"mean", NonFinitePolicy::Mean}};
  return cmd
      .add_option("--nan", policy,
                  "NaN/Inf pixels: reject (error), keep, zero (set to 0), mean (plane mean)")
      ->transform(choice(policies))
      ->default_str(policy == NonFinitePolicy::Keep ? "keep" : "reject");
}

std::string shape_text(const at::Tensor& t) {
  std::string s;
  for (auto d : t.sizes()) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s;
}

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
  case at::kFloat: return "float32";
  case at::kDouble: return "float64";
  case at::kComplexFloat: return "complex64";
  case at::kComplexDouble: return "complex128";
  default: return c10::toString(t);
  }
}

void require_output_folder(const std::string& path, const std::string& what) {
  const auto slash = path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "."
                             : slash == 0               ? "/"
                                                        : path.substr(0, slash);
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw IoError("cannot write " + what + " '" + path + "': folder '" + folder +
                  "' does not exist");
  if (::access(folder.c_str(), W_OK) != 0)
    throw IoError("cannot write " + what + " '" + path + "': folder '" + folder +
                  "' is not writable");
}

void make_report_folder(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && ::mkdir(path.c_str(), 0777) != 0)
    throw IoError("cannot create the report folder '" + path + "'");
  require_output_folder(path + "/validation.json", "the report");
}

std::string path_stem(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) ||
      dot == (slash == std::string::npos ? 0 : slash + 1))
    return path;
  return path.substr(0, dot);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

ProgressLine::ProgressLine(bool quiet)
    : quiet_(quiet), tty_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

double ProgressLine::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressLine::show(const std::string& text, bool last) {
  if (quiet_) return;
  const double t = seconds();
  if (!last && t - shown_ < (tty_ ? 0.2 : 10.0)) return;
  shown_ = t;
  std::fprintf(stderr, "%s%s%s", tty_ ? "\r" : "", text.c_str(), tty_ && !last ? "   " : "\n");
  std::fflush(stderr);
}

} // namespace demix::cli
