#include "train_common.hpp"

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/viz/chart.hpp>
#include <demix/viz/preview.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sys/stat.h>
#include <utility>

namespace demix::cli {

TrainingStamps read_training_stamps(const std::string& path, const std::vector<double>& sigmas,
                                    const std::vector<std::string>& bands) {
  TrainingStamps t;
  t.set = read_galaxy_stamps(path);
  // Non-finite pixels, named where they are, before any model is built.
  for (const auto& [stamps, name] :
       {std::pair{t.set.stamps, "stamps"}, std::pair{t.set.noiseless, "noiseless stamps"}}) {
    if (!stamps.defined()) continue;
    const at::Tensor bad = at::isfinite(stamps).logical_not().nonzero(); // (n, 4): N, B, y, x
    if (bad.size(0) == 0) continue;
    const auto at = [&](int k) { return std::to_string(bad[0][k].item<int64_t>()); };
    throw ValueError("'" + path + "': its " + name + " hold " + std::to_string(bad.size(0)) +
                     " NaN or infinite pixel(s), the first in stamp " + at(0) + ", band " + at(1) +
                     ", pixel (x " + at(3) + ", y " + at(2) +
                     "); training needs finite stamps: drop or fill those stamps first");
  }
  const auto B = static_cast<std::size_t>(t.set.stamps.size(1));
  if (!sigmas.empty()) {
    if (sigmas.size() != B)
      throw ValueError("--sigmas has " + std::to_string(sigmas.size()) + " values but '" + path +
                       "' has " + std::to_string(B) + " bands");
    t.sigmas = sigmas;
    t.sigma_source = "--sigmas";
  } else if (!t.set.noise_sigmas.empty()) {
    t.sigmas = t.set.noise_sigmas;
    t.sigma_source = "SIGMAn keywords";
  } else {
    t.sigmas = estimate_stamp_noise_sigmas(t.set.stamps);
    t.sigma_source = "estimated from the stamp borders";
  }
  for (double s : t.sigmas)
    if (!(s > 0)) throw ValueError("noise sigmas must be positive, got " + std::to_string(s));
  if (!bands.empty()) {
    if (bands.size() != B)
      throw ValueError("--bands has " + std::to_string(bands.size()) + " names but '" + path +
                       "' has " + std::to_string(B) + " bands");
    t.bands = bands;
  } else if (!t.set.band_names.empty()) {
    t.bands = t.set.band_names;
  } else {
    for (std::size_t b = 1; b <= B; ++b) t.bands.push_back("band" + std::to_string(b));
  }
  return t;
}

void print_epoch(const TrainingHistory& h, int total_epochs) {
  const EpochRecord& r = h.epochs.back();
  std::string line = "epoch " + std::to_string(r.epoch) + "/" + std::to_string(total_epochs);
  char buf[96];
  for (std::size_t m = 0; m < h.metric_names.size(); ++m) {
    std::snprintf(buf, sizeof(buf), "  %s %.5g", h.metric_names[m].c_str(), r.train[m]);
    line += buf;
    if (!r.val.empty()) {
      std::snprintf(buf, sizeof(buf), " (val %.5g)", r.val[m]);
      line += buf;
    }
  }
  double spent = 0;
  for (const EpochRecord& e : h.epochs) spent += e.seconds;
  const double eta = spent / h.epochs.size() * std::max(0, total_epochs - r.epoch);
  std::snprintf(buf, sizeof(buf), "  lr %.3g  %.1f s  ETA %.0f s%s", r.learning_rate, r.seconds,
                eta, h.best_epoch == r.epoch ? "  *" : "");
  line += buf;
  std::cerr << line << std::endl;
}

std::vector<std::string> add_history_files(OutputFiles& outputs, const std::string& stem) {
  const std::string csv = stem + "_history.csv", png = stem + "_loss.png";
  outputs.add(csv, "the loss history");
  outputs.add(png, "the loss curve");
  return {csv, png};
}

namespace {

/// The loss curves as a chart: every metric in its own panel, train and validation against the
/// epoch, the kept (best) epoch marked; log y where the values are positive.
void write_history_chart(const std::string& path, const TrainingHistory& h) {
  std::vector<ChartPanel> panels;
  for (std::size_t m = 0; m < h.metric_names.size(); ++m) {
    ChartSeries train{"train", {}, {}, {}, {}, {31, 119, 180}, false, true};
    ChartSeries val{"validation", {}, {}, {}, {}, {255, 127, 14}, false, true};
    bool positive = true;
    for (const EpochRecord& r : h.epochs) {
      for (auto [s, v] : {std::pair{&train, &r.train}, std::pair{&val, &r.val}})
        if (m < v->size()) {
          s->x.push_back(r.epoch);
          s->y.push_back((*v)[m]);
          positive = positive && (*v)[m] > 0;
        }
    }
    ChartPanel p;
    p.title = h.metric_names[m] + (m == 0 ? " (objective)" : "");
    p.x_label = "epoch";
    p.y_label = h.metric_names[m] + (positive ? " (log scale)" : "");
    p.log_y = positive;
    p.series.push_back(std::move(train));
    if (!val.x.empty()) p.series.push_back(std::move(val));
    if (h.best_epoch > 0) p.marks.push_back({double(h.best_epoch), "kept"});
    panels.push_back(std::move(p));
  }
  ChartOptions o;
  o.columns = std::min<int>(3, static_cast<int>(std::max<std::size_t>(1, panels.size())));
  o.title = "training history";
  write_chart_png(path, panels, o);
}

} // namespace

void write_history_files(const TrainingHistory& history, OutputFiles& outputs,
                         const std::vector<std::string>& files) {
  write_text_file(outputs.staged(files.at(0)), history_csv(history));
  if (charts_available() && !history.metric_names.empty())
    write_history_chart(outputs.staged(files.at(1)), history);
  else // a build without cairo: the curve alone, no axes
    write_png(outputs.staged(files.at(1)), plot_history(history));
}

std::string provenance_line(const std::string& command, const Context& ctx,
                            const std::string& summary) {
  const BuildInfo info = build_info();
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return command + " | demix " + info.demix + ", LibTorch " + info.libtorch + ", " +
         ctx.describe() + ", " + date + " | " + summary;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

std::string shell_word(const std::string& word) {
  if (!word.empty() && word.find_first_of(" \t\"'\\$`;&|<>()*?[]{}!#~") == std::string::npos)
    return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

} // namespace demix::cli
