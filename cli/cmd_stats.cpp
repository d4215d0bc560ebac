// demix stats: statistics of a map (any of the registry's: stats/registry.hpp) to a FITS table
// (and JSON), or a comparison of two maps' statistics (--compare A B) with a PNG plot.

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/fits.hpp>
#include <demix/io/image_io.hpp>
#include <demix/stats/registry.hpp>
#include <demix/viz/chart.hpp>
#include <demix/viz/plot.hpp>
#include <demix/viz/preview.hpp>

#include "common.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>

namespace demix::cli {

namespace {

struct StatsCliOptions {
  StatisticKind kind = StatisticKind::Wph;
  int J = 0;  ///< 0 = the statistic's default (default_J in stats/registry.hpp)
  int L = 0;  ///< 0 = the statistic's default
  int dn = 2; ///< wph only: radial steps of the shift grid (pywph examples use 2)
  CommonNorm norm = CommonNorm::Default;
  Boundary boundary = Boundary::Periodic;
  bool log = false;         ///< take log(x) first (positive maps only)
  bool standardize = false; ///< then subtract each map's mean and divide by its std
  bool force = false;       ///< --compare files made with different options anyway
  NonFinitePolicy non_finite = NonFinitePolicy::Reject;
  std::string input;
  std::string output;
  std::string json;
  std::vector<std::string> compare; ///< two inputs: maps or coefficient FITS files
  std::string cross;                ///< a second map: cross statistics of (input, cross)
  int width = 1200, height = 400;   ///< --compare plot size in pixels
};

const char* kind_name(StatisticKind k) { return statistic_info(k).name; }

/// The statistic the options name, built for maps of height x width (-J checked against them and
/// named as the flag in the message).
/// `progress`: the steps of WPH, WST and the scattering covariance (long calls on one large map).
std::unique_ptr<Statistic>
make_cli_statistic(const StatsCliOptions& o, int64_t height, int64_t width, bool complex_data,
                   const Context& ctx, const std::function<void(int64_t, int64_t)>& progress = {}) {
  const StatisticInfo& info = statistic_info(o.kind);
  const Grid2d grid{height, width, o.boundary};
  if (info.takes_scales && o.J > largest_J(o.kind, grid))
    throw ValueError("-J " + std::to_string(o.J) + " is too large for a " + std::to_string(height) +
                     " x " + std::to_string(width) + " map: " + info.name + " needs 2^J " +
                     (info.J_below_side ? "< " : "<= ") +
                     "min(H, W), so J <= " + std::to_string(largest_J(o.kind, grid)));
  CommonOptions common;
  common.kind = o.kind;
  common.norm = o.norm;
  common.complex_data = complex_data;
  if (o.J > 0) common.J = o.J;
  if (o.L > 0) common.L = o.L;
  if (info.takes_shifts) common.dn = o.dn;
  StatisticSpec spec = resolve(common, grid);
  if (auto* wph = std::get_if<WphOptions>(&spec)) wph->progress = progress;
  if (auto* wst = std::get_if<WstOptions>(&spec)) wst->progress = progress;
  if (auto* scov = std::get_if<ScatteringCovOptions>(&spec)) scov->progress = progress;
  return make_statistic(spec, grid, ctx);
}

/// "J = 7, L = 4, dn = 2": the scale and shift options of a statistic, for messages.
std::string scales_text(const Statistic& stat) {
  std::string text;
  for (const StatisticKeyword& k : stat.keywords())
    if (k.json == "J" || k.json == "L" || k.json == "dn")
      text += (text.empty() ? "" : ", ") + k.json + " = " +
              std::to_string(std::get<long long>(k.value));
  return text;
}

/// The map as the statistics see it: (B, H, W), optionally log and standardised.
at::Tensor prepare_map(const Image& image, const StatsCliOptions& o) {
  at::Tensor x = image.data.dim() == 2 ? image.data.unsqueeze(0) : image.data; // (B, H, W)
  if (x.is_complex() && (!statistic_info(o.kind).supports_complex || o.log))
    throw ValueError("'" + image.source + "' is complex (" + dtype_name(x.scalar_type()) +
                     "): --kind " + kind_name(o.kind) + (o.log ? " with --log" : "") +
                     " takes real maps only");
  if (o.log) {
    const int64_t bad = (x <= 0).sum().item<int64_t>();
    if (bad > 0)
      throw ValueError("--log needs positive pixels, but " + std::to_string(bad) + " of " +
                       std::to_string(x.numel()) + " pixels of '" + image.source +
                       "' are <= 0 (min " + std::to_string(x.min().item<double>()) + ")");
    x = x.log();
  }
  if (o.standardize) {
    const at::Tensor mean = x.mean({-2, -1}, true);
    const at::Tensor std = (x - mean).abs().pow(2).mean({-2, -1}, true).sqrt();
    if ((std == 0).any().item<bool>())
      throw ValueError("--standardize: a map of '" + image.source +
                       "' is constant (standard deviation 0)");
    x = (x - mean) / std;
  }
  return x;
}

/// The options that define the statistic (its keywords), then the map's preparation, as (key,
/// JSON value) pairs.
std::vector<std::pair<std::string, std::string>>
options_json(const Statistic& stat, const StatsCliOptions& o, const Context& ctx) {
  std::vector<std::pair<std::string, std::string>> kv;
  for (const StatisticKeyword& k : stat.keywords())
    kv.emplace_back(k.json, std::visit(
                                [](const auto& v) -> std::string {
                                  using V = std::decay_t<decltype(v)>;
                                  if constexpr (std::is_same_v<V, std::string>)
                                    return json_string(v);
                                  else if constexpr (std::is_same_v<V, double>)
                                    return json_number(v);
                                  else
                                    return std::to_string(v);
                                },
                                k.value));
  kv.emplace_back("log", o.log ? "true" : "false");
  kv.emplace_back("standardize", o.standardize ? "true" : "false");
  kv.emplace_back("dtype", json_string(dtype_name(ctx.real_dtype())));
  return kv;
}

void add_keywords(FitsHeader& h, const Statistic& stat, const StatsCliOptions& o,
                  const Context& ctx, int64_t batch) {
  h.set("STAT", std::string_view(stat.name()), "statistic: wph, wst, scov or ps");
  for (const StatisticKeyword& k : stat.keywords())
    std::visit([&](const auto& v) { h.set(k.fits, v, k.comment); }, k.value);
  h.set("LOGMAP", o.log, "T if log(map) was analysed");
  h.set("STDMAP", o.standardize, "T if each map was standardised");
  h.set("PRECISN", dtype_name(ctx.real_dtype()), "computing precision");
  h.set("NMAPS", static_cast<long long>(batch), "number of maps analysed");
}

std::string coefficients_json(const Coefficients& c, const Statistic& stat,
                              const StatsCliOptions& o, const Context& ctx,
                              const std::string& input) {
  std::ostringstream s;
  s << "{\n  \"kind\": " << json_string(stat.name()) << ",\n  \"input\": " << json_string(input)
    << ",\n  \"options\": {";
  bool first = true;
  for (const auto& [k, v] : options_json(stat, o, ctx)) {
    s << (first ? "" : ", ") << json_string(k) << ": " << v;
    first = false;
  }
  s << "},\n  \"maps\": " << c.values.size(0) << ",\n  \"classes\": [";
  for (std::size_t i = 0; i < c.classes.size(); ++i)
    s << (i ? ", " : "") << json_string(c.classes[i]);
  s << "],\n  \"coefficients\": [";
  const at::Tensor v = c.values.detach().to(at::kCPU).to(at::kComplexDouble).contiguous(); // (B, K)
  const at::Tensor re = at::real(v).contiguous(), im = at::imag(v).contiguous();
  const at::Tensor labels = c.labels.to(at::kLong).contiguous();
  const int64_t B = v.size(0), K = c.size(), nl = labels.size(1);
  const double* pre = re.data_ptr<double>();
  const double* pim = im.data_ptr<double>();
  const int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t* id = c.class_id.data_ptr<int64_t>();
  const auto values = [&](const double* p, int64_t k) {
    if (B == 1) return json_number(p[k]);
    std::string a = "[";
    for (int64_t b = 0; b < B; ++b) a += (b ? ", " : "") + json_number(p[b * K + k]);
    return a + "]";
  };
  for (int64_t k = 0; k < K; ++k) {
    s << (k ? ",\n    " : "\n    ") << "{\"class\": " << json_string(c.classes[id[k]]);
    for (int64_t l = 0; l < nl; ++l)
      s << ", " << json_string(c.label_names[l]) << ": " << lab[k * nl + l];
    s << ", \"re\": " << values(pre, k) << ", \"im\": " << values(pim, k) << "}";
  }
  s << "\n  ]\n}\n";
  return s.str();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string fmt(const char* format, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void run_stats(StatsCliOptions o, const Globals& globals) {
  if (format_for_output(o.output) != FileFormat::Fits)
    throw ValueError("stats writes a FITS table; output '" + o.output +
                     "' does not end in .fits/.fit/.fts");
  OutputFiles outputs;
  outputs.input(o.input);
  if (!o.cross.empty()) outputs.input(o.cross);
  outputs.add(o.output, "the table (-o)");
  if (!o.json.empty()) outputs.add(o.json, "--json");
  const Context ctx = make_context(globals);
  const Image image = read_image(o.input, {.non_finite = o.non_finite});
  std::optional<Image> other;
  if (!o.cross.empty()) other = read_image(o.cross, {.non_finite = o.non_finite});
  const auto t0 = std::chrono::steady_clock::now();
  const at::Tensor x = ctx.to(prepare_map(image, o));
  at::Tensor y; // --cross: the second map
  if (other) {
    y = ctx.to(prepare_map(*other, o));
    if (y.sizes() != x.sizes())
      throw ShapeError("--cross: '" + o.cross + "' holds " + shape_text(y) + " but '" + o.input +
                       "' holds " + shape_text(x) + "; cross statistics need the same shape");
  }
  const bool complex_maps = x.is_complex() || (y.defined() && y.is_complex());
  // A few maps: a progress line over the statistic's chunks of moments (a large map takes long);
  // a cube: over its maps (below).
  const int64_t B = x.size(0);
  ProgressLine chunks_line(globals.quiet || B >= 4);
  const auto chunk_progress = [&](int64_t done, int64_t total) {
    const double t = chunks_line.seconds(), rate = done / std::max(t, 1e-9);
    chunks_line.show("stats: step " + std::to_string(done) + "/" + std::to_string(total) +
                         ", ETA " + fmt("%.0f", (total - done) / rate) + " s",
                     done == total);
  };
  const std::unique_ptr<Statistic> stat = make_cli_statistic(
      o, x.size(-2), x.size(-1), complex_maps, ctx,
      B < 4 && !globals.quiet ? chunk_progress : std::function<void(int64_t, int64_t)>());
  Coefficients c;
  {
    c10::AutoGradMode no_grad(false);
    // A cube goes through in chunks, for a progress line: each map's statistics are its own
    // (normalised by its own moments), so the chunks give the batch's values.
    const int64_t chunk = std::max<int64_t>(8, B / 50);
    ProgressLine line(globals.quiet || B < 4);
    std::vector<at::Tensor> values;
    for (int64_t start = 0; start < B; start += chunk) {
      const int64_t n = std::min(chunk, B - start);
      // Cross statistics: first fields from the map, second fields from --cross.
      Coefficients part = y.defined()
                              ? stat->forward_cross(x.narrow(0, start, n), y.narrow(0, start, n))
                              : stat->forward(x.narrow(0, start, n));
      values.push_back(part.values.detach().to(at::kCPU));
      if (start == 0) c = std::move(part);
      const double t = line.seconds(), rate = (start + n) / std::max(t, 1e-9);
      line.show("stats: " + std::to_string(start + n) + "/" + std::to_string(B) + " maps, " +
                    fmt("%.1f", rate) + " maps/s, ETA " + fmt("%.0f", (B - start - n) / rate) +
                    " s",
                start + n == B);
    }
    c.values = at::cat(values, 0);
  }
  const double elapsed = seconds_since(t0);

  FitsHeader header = image.header;
  add_keywords(header, *stat, o, ctx, x.size(0));
  header.add_history("demix " + build_info().demix + " stats --kind " + stat->name() + " " +
                     o.input + (o.cross.empty() ? "" : " --cross " + o.cross));
  if (!o.cross.empty())
    header.set("CROSS", std::string_view(o.cross), "second map of the cross statistics");
  const std::string json =
      o.json.empty() ? std::string() : coefficients_json(c, *stat, o, ctx, o.input);
  write_coefficients_fits(outputs.staged(o.output), c, header);
  if (!o.json.empty()) write_text_file(outputs.staged(o.json), json);
  outputs.commit();
  if (globals.quiet) return;
  const std::string scales = scales_text(*stat);
  std::cout << stat->name() << " of " << o.input << " (" << shape_text(image.data) << ")"
            << (scales.empty() ? "" : ", " + scales) << ": " << c.size() << " coefficients in "
            << c.classes.size() << " classes (" << fmt("%.2f", elapsed) << " s on "
            << ctx.describe() << ")\n";
  std::cout << "wrote " << o.output << (o.json.empty() ? "" : " and " + o.json) << "\n";
}

// ---- --compare ----------------------------------------------------------------------------------

bool is_coefficient_file(const std::string& spec) {
  if (detect_input_format(spec) != FileFormat::Fits) return false;
  const auto hdus = list_fits_hdus(spec);
  return std::any_of(hdus.begin(), hdus.end(),
                     [](const FitsHduInfo& h) { return h.name == kCoefficientsExtname; });
}

/// Same classes, labels and label names, else ValueError naming both inputs.
void check_comparable(const Coefficients& a, const Coefficients& b, const std::string& na,
                      const std::string& nb) {
  const std::string both = "cannot compare '" + na + "' and '" + nb + "': ";
  if (a.classes != b.classes || a.label_names != b.label_names)
    throw ValueError(both + "their coefficient classes or labels differ (different statistics?)");
  if (a.size() != b.size())
    throw ValueError(both + std::to_string(a.size()) + " vs " + std::to_string(b.size()) +
                     " coefficients (different J, L or dn?)");
  if (!a.class_id.equal(b.class_id) || !a.labels.equal(b.labels))
    throw ValueError(both + "their coefficients have different labels (different options?)");
  if (a.values.size(0) != b.values.size(0))
    throw ValueError(both + std::to_string(a.values.size(0)) + " vs " +
                     std::to_string(b.values.size(0)) + " maps");
}

/// Per class and for all classes: the number of coefficients and the mean and max of rel (B', K)
/// over them and over the B' maps of rel. `map` (a map index, or "all") leads each row of a batch's
/// table; single maps keep the four-column table.
void print_comparison_rows(const Coefficients& a, const at::Tensor& rel, const std::string& map) {
  const auto row = [&](const std::string& cls, int64_t n, const at::Tensor& r) {
    const double mean = n ? r.mean().item<double>() : 0.0, max = n ? r.max().item<double>() : 0.0;
    if (map.empty())
      std::printf("%-10s %8lld %14.4g %14.4g\n", cls.c_str(), static_cast<long long>(n), mean, max);
    else
      std::printf("%-5s %-10s %8lld %14.4g %14.4g\n", map.c_str(), cls.c_str(),
                  static_cast<long long>(n), mean, max);
  };
  for (std::size_t k = 0; k < a.classes.size(); ++k) {
    const at::Tensor m = (a.class_id == static_cast<int64_t>(k));
    row(a.classes[k], m.sum().item<int64_t>(), rel.index({at::indexing::Slice(), m}));
  }
  if (a.size() > 0) row("all", a.size(), rel);
}

/// Largest --compare plot, in rows: a batch's panels shrink to fit (down to 16 rows each).
constexpr int64_t kMaxPlotRows = 20000;

/// The --compare figure: per map, |coefficient| of A and B (log scale) against the coefficient
/// index with the coefficients grouped by class, each class's start marked with its name.
void write_comparison_chart(const std::string& path, const Coefficients& a, const at::Tensor& va,
                            const at::Tensor& vb /* (B, K) complex */, const std::string& na,
                            const std::string& nb, int width, int height) {
  const at::Tensor order = at::argsort(a.class_id.to(at::kDouble) * double(a.size()) +
                                       at::arange(a.size(), at::kDouble)); // stable by class
  const at::Tensor ids = a.class_id.index_select(0, order);
  std::vector<ChartMark> marks;
  for (int64_t i = 0; i < ids.size(0); ++i)
    if (i == 0 || ids[i].item<int64_t>() != ids[i - 1].item<int64_t>())
      marks.push_back({i - 0.5, a.classes[static_cast<std::size_t>(ids[i].item<int64_t>())]});
  const auto values = [&](const at::Tensor& v, int64_t m) {
    const at::Tensor x = v[m].index_select(0, order).abs().contiguous();
    return std::vector<double>(x.data_ptr<double>(), x.data_ptr<double>() + x.numel());
  };
  std::vector<double> index(static_cast<std::size_t>(a.size()));
  for (std::size_t i = 0; i < index.size(); ++i) index[i] = static_cast<double>(i);
  std::vector<ChartPanel> panels;
  const int64_t B = va.size(0);
  if (B > 32)
    throw ValueError("--compare -o: " + std::to_string(B) +
                     " maps do not fit one figure (at most 32 panels); leave out -o for the table "
                     "alone");
  for (int64_t m = 0; m < B; ++m) {
    ChartPanel p;
    p.title = B > 1 ? "map " + std::to_string(m) : "coefficients";
    p.x_label = "coefficient index (grouped by class)";
    p.y_label = "|coefficient| (log scale)";
    p.log_y = true;
    p.marks = marks;
    p.series.push_back({"A: " + na, index, values(va, m), {}, {}, kSeriesColours[0], false, false});
    p.series.push_back({"B: " + nb, index, values(vb, m), {}, {}, kSeriesColours[1], true, false});
    panels.push_back(std::move(p));
  }
  ChartOptions co;
  co.columns = 1;
  co.panel_width = std::max(480, width);
  co.panel_height = std::max(240, std::min(height, 600));
  co.title = "demix stats --compare";
  write_chart_png(path, panels, co);
}

void run_compare(StatsCliOptions o, const Globals& globals) {
  if (!o.output.empty() && format_for_output(o.output) != FileFormat::Png)
    throw ValueError("--compare writes a PNG plot; output '" + o.output + "' does not end in .png");
  OutputFiles outputs;
  outputs.input(o.compare.at(0));
  outputs.input(o.compare.at(1));
  if (!o.output.empty()) outputs.add(o.output, "the plot (-o)");
  const std::string na = o.compare.at(0);
  const std::string nb = o.compare.at(1);
  const bool table_a = is_coefficient_file(na), table_b = is_coefficient_file(nb);
  std::optional<Context> ctx;
  std::optional<Image> map_a, map_b;
  if (!table_a) map_a = read_image(na, {.non_finite = o.non_finite});
  if (!table_b) map_b = read_image(nb, {.non_finite = o.non_finite});
  // Maps of two sizes: the statistic's defaults (J) and checks follow the smaller sides; each map
  // gets an operator of its own size.
  std::string scales;
  if (map_a || map_b) {
    ctx.emplace(make_context(globals));
    int64_t h = std::numeric_limits<int64_t>::max(), w = h;
    for (const auto* m : {&map_a, &map_b})
      if (*m) {
        h = std::min(h, (*m)->data.size(-2));
        w = std::min(w, (*m)->data.size(-1));
      }
    const auto smallest = make_cli_statistic(o, h, w, false, *ctx);
    if (o.J == 0) o.J = default_J(o.kind, {h, w});
    scales = scales_text(*smallest);
  }
  // Each side's options as the keywords a coefficient file records (a map's: this run's).
  FitsHeader options_a, options_b;
  const auto load = [&](const std::string& spec, const std::optional<Image>& map,
                        FitsHeader& options) {
    if (!map) return read_coefficients_fits(spec, &options);
    c10::AutoGradMode no_grad(false);
    const at::Tensor x = ctx->to(prepare_map(*map, o));
    const auto stat = make_cli_statistic(o, x.size(-2), x.size(-1), x.is_complex(), *ctx);
    add_keywords(options, *stat, o, *ctx, x.dim() == 3 ? x.size(0) : 1);
    Coefficients c = stat->forward(x);
    c.values = c.values.detach().to(at::kCPU);
    return c;
  };
  const Coefficients a = load(na, map_a, options_a), b = load(nb, map_b, options_b);
  // Statistics of other options (normalisation, log, boundary...) can have the same labels and
  // still not be comparable: refuse, naming the keywords that differ.
  std::string differ;
  for (const char* key :
       {"STAT", "J", "L", "DN", "NORM", "BOUNDARY", "BINS", "BINNING", "ISO", "LOGMAP", "STDMAP"}) {
    const auto va = options_a.value(key), vb = options_b.value(key);
    if (va != vb)
      differ += std::string(differ.empty() ? "" : ", ") + key + " " + va.value_or("(none)") +
                " vs " + vb.value_or("(none)");
  }
  if (!differ.empty() && !o.force)
    throw ValueError("cannot compare '" + na + "' and '" + nb +
                     "': computed with different options (" + differ +
                     "); --force compares them anyway");
  if (!differ.empty() && !globals.quiet)
    std::cerr << "stats --compare: different options (" << differ << "), compared anyway\n";
  check_comparable(a, b, na, nb);

  // Relative differences |a - b| / max(|a|, |b|, tiny), over every map of the batch.
  const at::Tensor va = a.values.to(at::kComplexDouble), vb = b.values.to(at::kComplexDouble);
  const at::Tensor scale =
      at::maximum(at::maximum(va.abs(), vb.abs()),
                  at::full({}, std::numeric_limits<double>::min(), at::kDouble));
  const at::Tensor rel = (va - vb).abs() / scale; // (B, K) float64
  if (!globals.quiet) {
    std::cout << "statistics: " << (map_a || map_b ? std::string(kind_name(o.kind)) : "from files");
    if (!scales.empty()) std::cout << ", " << scales;
    std::cout << "\nA = " << na << (table_a ? " (coefficients)" : " (map)") << "\nB = " << nb
              << (table_b ? " (coefficients)" : " (map)") << "\n\n";
  }
  // The table is the result: printed even with --quiet. A batch gets rows per map, then over all.
  const int64_t B = rel.size(0);
  if (B == 1) {
    std::printf("%-10s %8s %14s %14s\n", "class", "n", "mean rel diff", "max rel diff");
    print_comparison_rows(a, rel, "");
  } else {
    std::printf("%-5s %-10s %8s %14s %14s\n", "map", "class", "n", "mean rel diff", "max rel diff");
    for (int64_t m = 0; m < B; ++m)
      print_comparison_rows(a, rel.narrow(0, m, 1), std::to_string(m));
    print_comparison_rows(a, rel, "all");
  }
  std::fflush(stdout);

  if (o.output.empty()) return;
  if (charts_available()) {
    write_comparison_chart(outputs.staged(o.output), a, va, vb, na, nb, o.width, o.height);
    outputs.commit();
    if (!globals.quiet)
      std::cout << "\nwrote " << o.output << ": |coefficient| of A (blue) and B (orange) against "
                << "the coefficient index, grouped by class, one panel per map\n";
    return;
  }
  // One panel per map (top to bottom), each: coefficients grouped by class, log10 |value|, A and B.
  const int64_t panel_height =
      std::max<int64_t>(16, std::min<int64_t>(o.height, (kMaxPlotRows - (B - 1)) / B));
  if (B * (panel_height + 1) - 1 > kMaxPlotRows)
    throw ValueError("--compare -o: " + std::to_string(B) + " maps do not fit one plot (at most " +
                     std::to_string((kMaxPlotRows + 1) / 17) +
                     " panels of 16 rows); leave out -o for the table alone");
  const at::Tensor order = at::argsort(a.class_id.to(at::kDouble) * double(a.size()) +
                                       at::arange(a.size(), at::kDouble)); // stable by class
  const at::Tensor ids = a.class_id.index_select(0, order);
  std::vector<int64_t> separators;
  for (int64_t i = 1; i < ids.size(0); ++i)
    if (ids[i].item<int64_t>() != ids[i - 1].item<int64_t>()) separators.push_back(i);
  const auto series = [&](const at::Tensor& v, int64_t m) {
    return v[m].index_select(0, order).abs().log10();
  };
  const Rgb ca = kSeriesColours[0], cb = kSeriesColours[1];
  std::vector<at::Tensor> rows; // panels, with a grey divider row between two panels
  for (int64_t m = 0; m < B; ++m) {
    if (m > 0)
      rows.push_back(
          at::tensor({kSeparatorColour.r, kSeparatorColour.g, kSeparatorColour.b}, at::kByte)
              .view({1, 1, 3})
              .expand({1, o.width, 3}));
    rows.push_back(plot_series({series(va, m), series(vb, m)}, {ca, cb}, separators, o.width,
                               static_cast<int>(panel_height)));
  }
  const at::Tensor picture = at::cat(rows, 0).contiguous(); // (rows, width, 3)
  write_png(outputs.staged(o.output), picture);
  outputs.commit();
  if (globals.quiet) return;
  const auto rgb = [](Rgb c) {
    return "rgb(" + std::to_string(c.r) + ", " + std::to_string(c.g) + ", " + std::to_string(c.b) +
           ")";
  };
  std::cout << "\nwrote " << o.output << " (" << o.width << " x " << picture.size(0) << "): ";
  if (B > 1)
    std::cout << B << " panels of " << panel_height
              << " rows, one per map (map 0 at the top, each on its own y range), divided by grey "
                 "lines; in each ";
  std::cout << "y = log10 |coefficient|" << (B > 1 ? " of that map" : "")
            << ", x = coefficient index grouped by class"
            << " (grey lines between classes:";
  for (const auto& name : a.classes) std::cout << " " << name;
  std::cout << ")\n  legend: blue " << rgb(ca) << " = A " << na << "\n          orange " << rgb(cb)
            << " = B " << nb << " (drawn over A)\n";
}

void run(StatsCliOptions& o, const Globals& globals, const CLI::App& cmd) {
  if (!o.compare.empty()) {
    if (!o.input.empty())
      throw CLI::ValidationError("--compare",
                                 "takes its two inputs itself; remove '" + o.input + "'");
    if (!o.json.empty()) throw CLI::ValidationError("--json", "is not available with --compare");
    run_compare(o, globals);
    return;
  }
  if (o.input.empty()) throw CLI::RequiredError("MAP (or --compare A B)");
  if (o.output.empty()) throw CLI::RequiredError("-o,--output");
  if (cmd.count("--width") || cmd.count("--height"))
    throw CLI::ValidationError("--width/--height", "only apply to --compare plots");
  run_stats(o, globals);
}

} // namespace

void add_stats_command(CLI::App& app, const Globals& globals) {
  auto o = std::make_shared<StatsCliOptions>();
  auto* cmd = app.add_subcommand(
      "stats",
      "Scattering statistics of a map (wph, wst, scov) to a FITS table (HDU 1 'COEFFS': one row "
      "per\n"
      "coefficient, columns CLASS, one per label, REAL, IMAG (vectors of length B for a cube of B\n"
      "maps); HDU 0 keeps the map's keywords (WCS) plus STAT, J, L, ...), or --compare A B");
  cmd->add_option("map", o->input, "Input map: FITS (file.fits[HDU]) or .npy; a cube is a batch");
  cmd->add_option("-o,--output", o->output,
                  "Output .fits (coefficients); with --compare, an optional .png plot");
  std::map<std::string, StatisticKind> kinds;
  for (const StatisticInfo& info : statistic_registry()) kinds.emplace(info.name, info.kind);
  const std::map<std::string, CommonNorm> norms{{"none", CommonNorm::None},
                                                {"auto", CommonNorm::Auto}};
  const std::map<std::string, Boundary> boundaries{{"periodic", Boundary::Periodic},
                                                   {"nonperiodic", Boundary::NonPeriodic}};
  cmd->add_option("--kind", o->kind,
                  "wph (wavelet phase harmonics), wst (scattering transform means), scov "
                  "(scattering covariance), ps (isotropic power spectrum)")
      ->transform(choice(kinds))
      ->default_str("wph");
  cmd->add_option("-J", o->J,
                  "Number of dyadic scales; default min(7, log2(min(H, W)) - 2) for wph and scov, "
                  "min(5, log2(min(H, W)) - 2) for wst (wph needs 2^J < min(H, W), others <=)")
      ->check(positive())
      ->default_str("auto");
  cmd->add_option("-L", o->L,
                  "Number of orientations in [0, pi), 1 to 64; default 4 (wph, scov), 8 (wst); "
                  "pywph's WPHOp defaults to L = 8: give -L 8 to match it")
      ->check(in_range(1, 64))
      ->default_str("auto");
  cmd->add_option("--dn", o->dn,
                  "wph: radial steps of the shift grid, 0 to 16 (0 = no shifts); pywph's WPHOp "
                  "defaults to dn = 0, its examples use 2")
      ->check(in_range(0, 16))
      ->default_str("2");
  cmd->add_option("--norm", o->norm,
                  "none or auto: wph auto divides by each map's own standard deviations, scov auto "
                  "is Cheng's P00 normalisation; default none (wph), auto (scov); not for wst")
      ->transform(choice(norms))
      ->default_str("kind's default");
  cmd->add_option("--boundary", o->boundary,
                  "periodic, or nonperiodic (wph: cut and zero-pad borders; wst: kymatio's "
                  "reflection padding; scov: periodic only); kymatio's Scattering2D always pads by "
                  "reflection: give --boundary nonperiodic to match it")
      ->transform(choice(boundaries))
      ->default_str("periodic");
  cmd->add_flag("--log", o->log, "Analyse log(map) (all pixels must be > 0)");
  cmd->add_flag("--force", o->force,
                "--compare statistics computed with different options (NORM, LOGMAP...) anyway");
  cmd->add_flag("--standardize", o->standardize,
                "Analyse (map - mean) / std, per map (after --log)");
  cmd->add_option("--json", o->json, "Also write the coefficients as JSON");
  cmd->add_option("--cross", o->cross,
                  "wph, ps: a second map of the same shape; cross statistics (wph: first field of "
                  "each moment from the map, second from this one; ps: the cross-spectrum; "
                  "periodic maps)");
  cmd->add_option("--compare", o->compare,
                  "Compare two maps (statistics computed with the options above) or two "
                  "coefficient files written by 'demix stats': per-class relative differences, "
                  "per map for a batch, and a plot with -o plot.png (a panel per map)")
      ->expected(2);
  cmd->add_option("--width", o->width, "--compare plot width in pixels")
      ->check(CLI::Range(16, 20000))
      ->default_str("1200");
  cmd->add_option("--height", o->height,
                  "--compare plot height in pixels (for a batch: of each map's panel)")
      ->check(CLI::Range(16, 20000))
      ->default_str("400");
  add_nan_option(*cmd, o->non_finite);
  cmd->callback([o, &globals, cmd] {
    const StatisticInfo& info = statistic_info(o->kind);
    const std::string kind = std::string("--kind ") + info.name;
    if (!info.takes_norm && cmd->count("--norm"))
      throw CLI::ValidationError("--norm", "does not apply to " + kind);
    if (!info.takes_scales && (cmd->count("-J") || cmd->count("-L")))
      throw CLI::ValidationError("-J/-L", "do not apply to " + kind);
    if (!info.takes_shifts && cmd->count("--dn"))
      throw CLI::ValidationError("--dn", "does not apply to " + kind);
    if (!info.supports_cross && cmd->count("--cross"))
      throw CLI::ValidationError("--cross", "is not available for " + kind);
    run(*o, globals, *cmd);
  });
}

} // namespace demix::cli
