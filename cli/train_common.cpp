#include "train_common.hpp"

#include <demix/core/build_info.hpp>
#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/viz/preview.hpp>

#include <cstdio>
#include <ctime>
#include <iostream>
#include <sys/stat.h>

namespace demix::cli {

TrainingStamps read_training_stamps(const std::string& path, const std::vector<double>& sigmas,
                                    const std::vector<std::string>& bands) {
  TrainingStamps t;
  t.set = read_galaxy_stamps(path);
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
  std::snprintf(buf, sizeof(buf), "  lr %.3g  %.1f s%s", r.learning_rate, r.seconds,
                h.best_epoch == r.epoch ? "  *" : "");
  line += buf;
  std::cerr << line << std::endl;
}

std::vector<std::string> write_history_files(const TrainingHistory& history,
                                             const std::string& stem) {
  const std::string csv = stem + "_history.csv", png = stem + "_loss.png";
  write_text_file(csv, history_csv(history));
  write_png(png, plot_history(history));
  return {csv, png};
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
