#include <demix/core/errors.hpp>
#include <demix/viz/chart.hpp>

#include "io/detail/atomic_file.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#ifdef DEMIX_HAVE_CAIRO
#include <cairo.h>
#endif

namespace demix {

namespace {

void check(const std::vector<ChartPanel>& panels, const ChartOptions& o) {
  if (panels.empty()) throw ValueError("chart: no panel to draw");
  if (o.columns < 1 || o.panel_width < 160 || o.panel_height < 120)
    throw ValueError("chart: columns " + std::to_string(o.columns) + ", panel " +
                     std::to_string(o.panel_width) + " x " + std::to_string(o.panel_height) +
                     ": need >= 1 column and panels of at least 160 x 120 pixels");
  for (const ChartPanel& p : panels)
    if (p.image && (!p.image->rgb.defined() || p.image->rgb.dim() != 3 ||
                    p.image->rgb.size(2) != 3 || p.image->rgb.scalar_type() != at::kByte ||
                    p.image->rgb.size(0) < 1 || p.image->rgb.size(1) < 1))
      throw ShapeError("chart: the image of panel '" + p.title +
                       "' must be an (H, W, 3) uint8 picture");
  for (const ChartPanel& p : panels)
    for (const ChartSeries& s : p.series)
      if (s.y.size() != s.x.size() || (!s.lo.empty() && s.lo.size() != s.x.size()) ||
          (!s.hi.empty() && s.hi.size() != s.x.size()) || s.lo.empty() != s.hi.empty())
        throw ValueError("chart: series '" + s.label + "' of panel '" + p.title + "' has " +
                         std::to_string(s.x.size()) + " x, " + std::to_string(s.y.size()) + " y, " +
                         std::to_string(s.lo.size()) + " lo and " + std::to_string(s.hi.size()) +
                         " hi values");
}

} // namespace

#ifndef DEMIX_HAVE_CAIRO

bool charts_available() { return false; }

void write_chart_png(const std::string&, const std::vector<ChartPanel>& panels,
                     const ChartOptions& o) {
  check(panels, o);
  throw ValueError("chart: this demix was built without cairo (install libcairo2-dev and "
                   "reconfigure) and cannot draw figures");
}

#else

bool charts_available() { return true; }

namespace {

/// One axis: its data range and mapping to pixels, and its tick positions.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1; // in data units (log axes: > 0)

  double t(double v) const { return log ? std::log10(v) : v; }
  /// Fraction of the axis length at v.
  double frac(double v) const { return (t(v) - t(lo)) / (t(hi) - t(lo)); }
  bool usable(double v) const { return std::isfinite(v) && (!log || v > 0); }

  /// Ticks: decades (and 2, 5 within few decades) on log axes, steps of 1, 2 or 5 x 10^k giving
  /// 4 to 8 ticks on linear ones.
  std::vector<double> ticks() const {
    std::vector<double> out;
    if (log) {
      out = decade_ticks();
      if (out.size() >= 2) return out;
      // Less than a decade without two of its 1, 2, 5 marks: round linear values instead.
      Axis linear = *this;
      linear.log = false;
      return linear.ticks();
    }
    const double span = hi - lo, raw = span / 6;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (const double m : {1.0, 2.0, 5.0, 10.0})
      if (raw <= m * mag) {
        step = m * mag;
        break;
      }
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step)
      out.push_back(std::abs(v) < 1e-12 * span ? 0.0 : v);
    return out;
  }

  /// The spacing of linear ticks, for their labels' digits; 0 for decade ticks.
  double label_step() const {
    if (log && decade_ticks().size() >= 2) return 0;
    const std::vector<double> t = ticks();
    return t.size() < 2 ? 0.0 : t[1] - t[0];
  }

  std::vector<double> decade_ticks() const {
    std::vector<double> out;
    {
      const int a = static_cast<int>(std::floor(std::log10(lo))),
                b = static_cast<int>(std::ceil(std::log10(hi)));
      const int stride = std::max(1, (b - a) / 6);
      for (int e = a; e <= b; e += stride) {
        for (const double m :
             (b - a <= 2 ? std::vector<double>{1, 2, 5} : std::vector<double>{1})) {
          const double v = m * std::pow(10.0, e);
          if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back(v);
        }
      }
    }
    return out;
  }
};

/// A tick label: short, yet with the digits that tell neighbouring ticks apart (`step`: the
/// spacing of linear ticks; 0 for decade ticks): "0.5", "1e+04", "10.004", "17441.2".
std::string tick_text(double v, double step) {
  char buf[40];
  const double a = std::abs(v);
  if (a == 0) return "0";
  const int sig =
      step > 0 ? std::clamp(static_cast<int>(std::ceil(std::log10(a / step))) + 1, 1, 12) : 1;
  const int whole = static_cast<int>(std::floor(std::log10(a))) + 1; // digits before the point
  if ((a >= 1e6 && sig < whole) || a < 1e-3)
    std::snprintf(buf, sizeof buf, "%.*e", sig - 1, v);
  else
    std::snprintf(buf, sizeof buf, "%.*g", std::max(sig, whole), v);
  return buf;
}

/// The data range of a panel's axis over every usable value (y: the bands too), padded by 5 %
/// on linear axes; a single value opens to +-1 (or a decade).
Axis fit_axis(const ChartPanel& p, bool is_x) {
  Axis ax;
  ax.log = is_x ? p.log_x : p.log_y;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  const auto take = [&](double v) {
    if (ax.usable(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  };
  for (const ChartSeries& s : p.series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      if (is_x) {
        take(s.x[i]);
      } else {
        take(s.y[i]);
        if (!s.lo.empty()) take(s.lo[i]), take(s.hi[i]);
      }
    }
  }
  if (!is_x && std::isfinite(p.reference_y)) take(p.reference_y);
  if (!(lo <= hi)) lo = ax.log ? 1 : 0, hi = ax.log ? 10 : 1;
  if (ax.log) {
    if (hi <= lo) lo /= 10, hi *= 10;
    const double pad = std::pow(hi / lo, 0.04);
    ax.lo = lo / pad, ax.hi = hi * pad;
  } else {
    if (hi <= lo) lo -= 1, hi += 1;
    const double pad = 0.05 * (hi - lo);
    ax.lo = lo - pad, ax.hi = hi + pad;
  }
  return ax;
}

void set_colour(cairo_t* cr, const Rgb& c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, alpha);
}

void text_at(cairo_t* cr, const std::string& s, double x, double y, double align_x,
             double align_y) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_move_to(cr, x - align_x * e.width - e.x_bearing, y - align_y * e.height - e.y_bearing);
  cairo_show_text(cr, s.c_str());
}

/// Width kept right of an image for its colour bar, its tick labels and its label.
constexpr double kColourBarSpace = 96;

/// The picture of an image panel at (left, top), `scale` screen pixels per picture pixel.
void draw_picture(cairo_t* cr, const ChartImage& im, double left, double top, double scale) {
  const at::Tensor rgb = im.rgb.to(at::kCPU).contiguous();
  const int H = static_cast<int>(rgb.size(0)), W = static_cast<int>(rgb.size(1));
  cairo_surface_t* pic = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_surface_flush(pic);
  unsigned char* dst = cairo_image_surface_get_data(pic);
  const int stride = cairo_image_surface_get_stride(pic);
  const unsigned char* src = rgb.data_ptr<unsigned char>();
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const unsigned char* c = src + 3 * (static_cast<std::size_t>(y) * W + x);
      reinterpret_cast<uint32_t*>(dst + static_cast<std::size_t>(y) * stride)[x] =
          (uint32_t{c[0]} << 16) | (uint32_t{c[1]} << 8) | c[2];
    }
  cairo_surface_mark_dirty(pic);
  cairo_save(cr);
  cairo_translate(cr, left, top);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, pic, 0, 0);
  // Enlarged pictures show their pixels; reduced ones are averaged.
  cairo_pattern_set_filter(cairo_get_source(cr),
                           scale >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
  cairo_paint(cr);
  cairo_restore(cr);
  cairo_surface_destroy(pic);
}

/// The colour bar of an image panel: the colours of vmin..vmax (value axis linear, colours as
/// stretched in the picture), ticks in data values, the label on the right.
void draw_colour_bar(cairo_t* cr, const ChartImage& im, double x, double top, double bottom) {
  const double bw = 14;
  cairo_save(cr);
  cairo_rectangle(cr, x, top, bw, bottom - top);
  cairo_clip(cr);
  for (int k = 0; k < 256; ++k) {
    const double f = k / 255.0;
    set_colour(cr, colormap_lookup(im.colormap, apply_stretch(im.stretch, f)));
    const double y = bottom - f * (bottom - top);
    cairo_rectangle(cr, x, y - (bottom - top) / 255.0 - 0.5, bw, (bottom - top) / 255.0 + 1);
    cairo_fill(cr);
  }
  cairo_restore(cr);
  set_colour(cr, {40, 40, 40});
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x, top, bw, bottom - top);
  cairo_stroke(cr);
  Axis a;
  a.lo = im.vmin, a.hi = im.vmax;
  double label_w = 0;
  cairo_set_font_size(cr, 11);
  const double bar_step = a.label_step();
  for (const double v : a.ticks()) {
    const double y = bottom - a.frac(v) * (bottom - top);
    cairo_move_to(cr, x + bw, y), cairo_line_to(cr, x + bw + 4, y), cairo_stroke(cr);
    cairo_text_extents_t e;
    cairo_text_extents(cr, tick_text(v, bar_step).c_str(), &e);
    label_w = std::max(label_w, e.x_advance);
    text_at(cr, tick_text(v, bar_step), x + bw + 7, y, 0, 0.5);
  }
  cairo_save(cr);
  cairo_translate(cr, x + bw + 14 + label_w, (top + bottom) / 2);
  cairo_rotate(cr, -M_PI / 2);
  cairo_set_font_size(cr, 12);
  text_at(cr, im.colour_bar_label, 0, 0, 0.5, 0);
  cairo_restore(cr);
}

void draw_panel(cairo_t* cr, const ChartPanel& p, double x0, double y0, double w, double h) {
  double left = x0 + 76, right = x0 + w - 14, top = y0 + 30, bottom = y0 + h - 46;
  Axis ax = fit_axis(p, true), ay = fit_axis(p, false);
  double scale = 1;
  if (p.image) { // the picture's aspect kept; axes in pixel coordinates
    const ChartImage& im = *p.image;
    const double W = static_cast<double>(im.rgb.size(1)), H = static_cast<double>(im.rgb.size(0));
    if (im.colour_bar) right -= kColourBarSpace;
    scale = std::min((right - left) / W, (bottom - top) / H);
    right = left + scale * W, bottom = top + scale * H;
    ax = Axis{}, ay = Axis{};
    ax.lo = ay.lo = -0.5, ax.hi = W - 0.5, ay.hi = H - 0.5;
  }
  const bool y_down = p.image && !p.image->origin_lower;
  const auto px = [&](double v) { return left + ax.frac(v) * (right - left); };
  const auto py = [&](double v) {
    return y_down ? top + ay.frac(v) * (bottom - top) : bottom - ay.frac(v) * (bottom - top);
  };
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  if (p.image) {
    draw_picture(cr, *p.image, left, top, scale);
    if (p.image->colour_bar) draw_colour_bar(cr, *p.image, right + 16, top, bottom);
  }

  // Grid lines and tick labels.
  cairo_set_font_size(cr, 11);
  cairo_set_line_width(cr, 1);
  const bool grid = !p.image; // no grid lines over a picture
  const double x_step = ax.label_step(), y_step = ay.label_step();
  for (const double v : ax.ticks()) {
    set_colour(cr, {225, 225, 225});
    if (grid) cairo_move_to(cr, px(v), top), cairo_line_to(cr, px(v), bottom), cairo_stroke(cr);
    set_colour(cr, {40, 40, 40});
    cairo_move_to(cr, px(v), bottom), cairo_line_to(cr, px(v), bottom + 4), cairo_stroke(cr);
    text_at(cr, tick_text(v, x_step), px(v), bottom + 7, 0.5, 0);
  }
  for (const double v : ay.ticks()) {
    set_colour(cr, {225, 225, 225});
    if (grid) cairo_move_to(cr, left, py(v)), cairo_line_to(cr, right, py(v)), cairo_stroke(cr);
    set_colour(cr, {40, 40, 40});
    cairo_move_to(cr, left - 4, py(v)), cairo_line_to(cr, left, py(v)), cairo_stroke(cr);
    text_at(cr, tick_text(v, y_step), left - 7, py(v), 1, 0.5);
  }
  if (std::isfinite(p.reference_y) && ay.usable(p.reference_y)) {
    set_colour(cr, {120, 120, 120});
    const double dash[] = {2, 3};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, left, py(p.reference_y)), cairo_line_to(cr, right, py(p.reference_y));
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
  }
  for (const ChartMark& m : p.marks) {
    if (!ax.usable(m.x) || m.x < std::min(ax.lo, ax.hi) || m.x > std::max(ax.lo, ax.hi)) continue;
    set_colour(cr, {150, 150, 150});
    cairo_move_to(cr, px(m.x), top), cairo_line_to(cr, px(m.x), bottom), cairo_stroke(cr);
    set_colour(cr, {80, 80, 80});
    cairo_set_font_size(cr, 9);
    text_at(cr, m.label, px(m.x) + 2, bottom - 3, 0, 1); // at the bottom: legends sit top right
    cairo_set_font_size(cr, 11);
  }

  // Bands, then lines, clipped to the plotting area.
  cairo_save(cr);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_clip(cr);
  for (const ChartSeries& s : p.series) {
    if (s.lo.empty()) continue;
    set_colour(cr, s.colour, 0.22);
    // One polygon per run of usable points.
    std::size_t i = 0;
    while (i < s.x.size()) {
      std::size_t j = i;
      const auto ok = [&](std::size_t k) {
        return ax.usable(s.x[k]) && ay.usable(s.lo[k]) && ay.usable(s.hi[k]);
      };
      while (j < s.x.size() && ok(j)) ++j;
      if (j > i + 1) {
        cairo_move_to(cr, px(s.x[i]), py(s.hi[i]));
        for (std::size_t k = i + 1; k < j; ++k) cairo_line_to(cr, px(s.x[k]), py(s.hi[k]));
        for (std::size_t k = j; k-- > i;) cairo_line_to(cr, px(s.x[k]), py(s.lo[k]));
        cairo_close_path(cr);
        cairo_fill(cr);
      }
      i = j + 1;
    }
  }
  for (const ChartSeries& s : p.series) {
    set_colour(cr, s.colour);
    cairo_set_line_width(cr, 1.8);
    const double dash[] = {6, 4};
    cairo_set_dash(cr, dash, s.dashed ? 2 : 0, 0);
    bool pen = false;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!ax.usable(s.x[i]) || !ay.usable(s.y[i])) {
        pen = false;
        continue;
      }
      if (pen)
        cairo_line_to(cr, px(s.x[i]), py(s.y[i]));
      else
        cairo_move_to(cr, px(s.x[i]), py(s.y[i]));
      pen = true;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    if (s.markers)
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (ax.usable(s.x[i]) && ay.usable(s.y[i])) {
          cairo_arc(cr, px(s.x[i]), py(s.y[i]), 2.6, 0, 2 * M_PI);
          cairo_fill(cr);
        }
  }
  cairo_restore(cr);

  // Frame, title, axis labels.
  set_colour(cr, {40, 40, 40});
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, left, top, right - left, bottom - top);
  cairo_stroke(cr);
  cairo_set_font_size(cr, 13);
  text_at(cr, p.title, (left + right) / 2, y0 + 9, 0.5, 0);
  cairo_set_font_size(cr, 12);
  text_at(cr, p.x_label, (left + right) / 2, bottom + 28, 0.5, 0);
  cairo_save(cr);
  cairo_translate(cr, x0 + 12, (top + bottom) / 2);
  cairo_rotate(cr, -M_PI / 2);
  text_at(cr, p.y_label, 0, 0, 0.5, 0.5);
  cairo_restore(cr);

  // Legend, top right inside the frame.
  cairo_set_font_size(cr, 11);
  double lw = 0;
  int entries = 0;
  for (const ChartSeries& s : p.series) {
    if (s.label.empty()) continue;
    cairo_text_extents_t e;
    cairo_text_extents(cr, s.label.c_str(), &e);
    lw = std::max(lw, e.x_advance);
    ++entries;
  }
  if (entries == 0) return;
  const double bw = lw + 40, bh = 16.0 * entries + 8, bx = right - bw - 6, by = top + 6;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, bx, by, bw, bh);
  cairo_fill_preserve(cr);
  set_colour(cr, {180, 180, 180});
  cairo_stroke(cr);
  int row = 0;
  for (const ChartSeries& s : p.series) {
    if (s.label.empty()) continue;
    const double ly = by + 12 + 16.0 * row++;
    if (!s.lo.empty()) {
      set_colour(cr, s.colour, 0.22);
      cairo_rectangle(cr, bx + 6, ly - 5, 24, 10);
      cairo_fill(cr);
    }
    set_colour(cr, s.colour);
    cairo_set_line_width(cr, 1.8);
    const double dash[] = {6, 4};
    cairo_set_dash(cr, dash, s.dashed ? 2 : 0, 0);
    cairo_move_to(cr, bx + 6, ly), cairo_line_to(cr, bx + 30, ly), cairo_stroke(cr);
    cairo_set_dash(cr, nullptr, 0, 0);
    set_colour(cr, {40, 40, 40});
    text_at(cr, s.label, bx + 36, ly, 0, 0.5);
  }
}

} // namespace

void write_chart_png(const std::string& path, const std::vector<ChartPanel>& panels,
                     const ChartOptions& o) {
  check(panels, o);
  const int n = static_cast<int>(panels.size());
  const int cols = std::min(o.columns, n), rows = (n + cols - 1) / cols;
  const int title_h = o.title.empty() ? 0 : 34;
  const int W = cols * o.panel_width, H = rows * o.panel_height + title_h;
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  if (title_h) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 15);
    set_colour(cr, {20, 20, 20});
    text_at(cr, o.title, W / 2.0, 10, 0.5, 0);
  }
  for (int i = 0; i < n; ++i)
    draw_panel(cr, panels[static_cast<std::size_t>(i)], (i % cols) * o.panel_width,
               title_h + (i / cols) * o.panel_height, o.panel_width, o.panel_height);
  cairo_surface_flush(surface);
  const cairo_status_t drawn = cairo_status(cr);
  detail::AtomicFile file(path);
  const cairo_status_t written = cairo_surface_write_to_png(surface, file.temp_path().c_str());
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  if (drawn != CAIRO_STATUS_SUCCESS || written != CAIRO_STATUS_SUCCESS)
    throw IoError("cannot write the chart '" + path +
                  "': " + cairo_status_to_string(drawn != CAIRO_STATUS_SUCCESS ? drawn : written));
  file.commit();
}

#endif

namespace {

/// One image panel scaled to about `size` pixels on the picture's longer side.
void write_image_panel(const std::string& path, ChartImage image, const std::string& title,
                       int size) {
  const double H = static_cast<double>(image.rgb.size(0)),
               W = static_cast<double>(image.rgb.size(1));
  const double scale = std::max(1e-3, std::min(size / W, size / H));
  ChartOptions o;
  o.columns = 1;
  // draw_panel's margins around the scaled picture (and its colour bar).
  o.panel_width =
      std::max(160, static_cast<int>(std::ceil(W * scale)) + 76 + 14 + (image.colour_bar ? 96 : 0));
  o.panel_height = std::max(120, static_cast<int>(std::ceil(H * scale)) + 30 + 46);
  ChartPanel panel;
  panel.title = title;
  panel.x_label = "x (column, pixels from 0)";
  panel.y_label = "y (row, pixels from 0)";
  panel.image = std::move(image);
  write_chart_png(path, {panel}, o);
}

} // namespace

void write_map_figure(const std::string& path, const at::Tensor& map, const PreviewOptions& options,
                      const std::string& title, const std::string& values, int size) {
  const auto [vmin, vmax] = preview_range(map, options);
  write_image_panel(path,
                    ChartImage{render_preview(map, options), options.origin == Origin::Lower, true,
                               values, options.colormap, options.stretch, vmin, vmax},
                    title, size);
}

void write_picture_figure(const std::string& path, const at::Tensor& rgb, bool origin_lower,
                          const std::string& title, int size) {
  ChartImage image;
  image.rgb = rgb;
  image.origin_lower = origin_lower;
  write_image_panel(path, std::move(image), title, size);
}

} // namespace demix
