// Quality and speed of component separation, one JSON line per run, for the table of the
// separation issue:
//   bench_separate [cpu|cuda|auto] [path/to/I_1.npy] [N[:M[:eras[:iterations]]]] [key=value...]
// keys: snr=2,1 (default 2,1,0.5,0.25), seeds=K (3), methods=wiener,bias,realizations (all),
// start=observation|wiener|matched (SeparationOptions::start; several, comma-separated: one run
// each), stats=wph|wph+ps, spectrum_eras=N, terms=contamination,independence (further terms,
// weight 1), speed=1 (separations only, no quality figures).
// The signal s is the dust map's n x n corner (default 256), log, standardised; d = s + white
// noise at SNR = std(s) / std(c) of 2, 1, 0.5 and 0.25, noise seeds 0, 1, 2; M realizations
// (default 20) of the same noise, other seeds. Methods: the Wiener filter with the true spectrum
// (s's power, averaged per |k| annulus) and with the spectrum estimated from d, and demix's
// separation with WPH (J = log2(n) - 1, L 4, dn 2, norm auto) by the bias and the realizations
// estimators (default 5 eras of 50 iterations). For each: the power spectrum of the estimate
// against s's in 12 log bins (largest |P~/P - 1| over the bins where the noise power is at most
// 10 and 100 times the signal's, median over all bins, the highest bin's ratio), the
// cross-correlation r(k) in the same bins beside the Wiener value sqrt(P_s / (P_s + P_c)), the
// pixel correlation, and validate_maps' largest deviations of the PDF (KS) and Minkowski
// functionals against s; the separation's seconds.

#include <demix/core/context.hpp>
#include <demix/io/npy.hpp>
#include <demix/separation/component_separation.hpp>
#include <demix/stats/power_spectrum.hpp>
#include <demix/validation/compare.hpp>

#include "timing.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Case {
  int64_t n = 256;
  int M = 20, eras = 5, iterations = 50;
  std::vector<double> snr{2.0, 1.0, 0.5, 0.25};
  int seeds = 3;
  std::vector<std::string> methods{"wiener", "bias", "realizations"};
  std::vector<std::string> starts{"observation"};
  bool with_ps = false, speed = false, contamination = false, independence = false;
  int spectrum_eras = 0;
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string part; std::getline(s, part, sep);)
    if (!part.empty()) out.push_back(part);
  return out;
}

void parse_keys(Case& c, int argc, char** argv) {
  for (int i = 4; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("expected key=value, got " + arg);
    const std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (key == "snr") {
      c.snr.clear();
      for (const std::string& v : split(value, ',')) c.snr.push_back(std::stod(v));
    } else if (key == "seeds")
      c.seeds = std::stoi(value);
    else if (key == "methods")
      c.methods = split(value, ',');
    else if (key == "start")
      c.starts = split(value, ',');
    else if (key == "stats")
      c.with_ps = value == "wph+ps";
    else if (key == "spectrum_eras")
      c.spectrum_eras = std::stoi(value);
    else if (key == "speed")
      c.speed = value == "1";
    else if (key == "terms")
      for (const std::string& t : split(value, ',')) {
        if (t != "contamination" && t != "independence")
          throw std::invalid_argument("unknown term " + t);
        (t == "contamination" ? c.contamination : c.independence) = true;
      }
    else
      throw std::invalid_argument("unknown key " + key);
  }
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

demix::SeparationStart start_named(const std::string& name) {
  for (const auto s : {demix::SeparationStart::Observation, demix::SeparationStart::Wiener,
                       demix::SeparationStart::Matched})
    if (name == demix::separation_start_name(s)) return s;
  throw std::invalid_argument("unknown start " + name);
}

Case parse_case(const std::string& mode) {
  Case c;
  std::vector<int> v;
  std::stringstream s(mode);
  for (std::string part; std::getline(s, part, ':');)
    if (!part.empty()) v.push_back(std::stoi(part));
  if (v.size() > 0) c.n = v[0];
  if (v.size() > 1) c.M = v[1];
  if (v.size() > 2) c.eras = v[2];
  if (v.size() > 3) c.iterations = v[3];
  return c;
}

std::string list(const at::Tensor& t) {
  std::string s = "[";
  const at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  for (int64_t i = 0; i < c.numel(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.4g", i ? ", " : "", c.data_ptr<double>()[i]);
    s += buf;
  }
  return s + "]";
}

/// One method's figures against the truth s (1, n, n); noise_power: the white noise's P (per
/// mode, |fft|^2 / (H W)).
void report(const std::string& method, double snr, int seed, const at::Tensor& estimate,
            const at::Tensor& s, double noise_power, double seconds, const demix::Context& ctx) {
  const int64_t n = s.size(-1);
  const demix::PowerSpectrumOperator ps({.bins = 12, .binning = demix::PsBinning::Log},
                                        demix::Grid2d{n, n}, ctx);
  const at::Tensor e = ctx.to(estimate.reshape({1, n, n})), t = ctx.to(s.reshape({1, n, n}));
  const at::Tensor P = ps.forward(t).values[0], Pe = ps.forward(e).values[0];
  const at::Tensor cross = ps.forward_cross(e, t).values[0];
  const at::Tensor ratio = (Pe / P).cpu(), r = (cross / (Pe * P).sqrt()).cpu();
  const at::Tensor nsr = (noise_power / P).cpu(); // noise-to-signal power per bin
  const at::Tensor err = (ratio - 1).abs();
  const auto worst = [&](double limit) {
    const at::Tensor m = nsr <= limit;
    return m.any().item<bool>() ? err.masked_select(m).max().item<double>() : 0.0;
  };
  const at::Tensor wiener_r = (P / (P + noise_power)).sqrt().cpu();
  const double corr =
      at::corrcoef(at::stack({e.flatten(), t.flatten()}).to(at::kDouble))[0][1].item<double>();
  const demix::ValidationReport v = demix::validate_maps(t.cpu(), e.cpu());
  std::string mink;
  for (const demix::MeasureCurve& c : v.curves)
    if (c.name.rfind("minkowski", 0) == 0 || c.name == "pdf") {
      char buf[64];
      std::snprintf(buf, sizeof buf, ", \"%s\": %.4g", c.name.c_str(), c.max_deviation);
      mink += buf;
    }
  std::printf("{\"code\": \"demix-separation\", \"method\": \"%s\", \"n\": %ld, \"snr\": %g, "
              "\"seed\": %d, \"ps_err_nsr10\": %.4g, \"ps_err_nsr100\": %.4g, "
              "\"ps_err_median\": %.4g, \"ps_ratio_highest\": %.4g, \"pixel_corr\": %.4g, "
              "\"ks\": %.4g%s, \"ps_ratio\": %s, \"r_k\": %s, \"wiener_r_k\": %s, "
              "\"noise_to_signal\": %s, \"seconds\": %.4g, \"device\": \"%s\"}\n",
              method.c_str(), static_cast<long>(n), snr, seed, worst(10), worst(100),
              err.median().item<double>(), ratio[-1].item<double>(), corr, v.ks_distance,
              mink.c_str(), list(ratio).c_str(), list(r).c_str(), list(wiener_r).c_str(),
              list(nsr).c_str(), seconds, ctx.describe().c_str());
  std::fflush(stdout);
}

void run_cases(const bench::Run& run, int argc, char** argv) {
  Case c = parse_case(run.mode);
  parse_keys(c, argc, argv);
  const demix::Context& ctx = run.context;
  at::Tensor s = demix::read_npy(run.dust).to(at::kDouble).narrow(0, 0, c.n).narrow(1, 0, c.n);
  s = s.log();
  s = ((s - s.mean()) / s.std()).unsqueeze(0); // (1, n, n)
  const at::Tensor truth_power = demix::radial_average(at::fft_fft2(s).abs().square());
  const int J = static_cast<int>(std::log2(static_cast<double>(c.n))) - 1;
  for (const double snr : c.snr)
    for (int seed = 0; seed < c.seeds; ++seed) {
      const double sigma = 1.0 / snr; // std(s) = 1
      at::manual_seed(1000 + seed);
      const at::Tensor d = s + sigma * at::randn_like(s);
      const at::Tensor noise = sigma * at::randn({c.M, 1, c.n, c.n}, at::kDouble);
      const double noise_power = sigma * sigma; // white: |fft|^2 / (H W) = sigma^2 per mode
      if (has(c.methods, "wiener") && !c.speed) {
        using demix::FilterGain;
        report("wiener-true-spectrum", snr, seed, demix::wiener_filter(d, noise, truth_power), s,
               noise_power, 0, ctx);
        report("wiener", snr, seed, demix::wiener_filter(d, noise), s, noise_power, 0, ctx);
        report("matched-true-spectrum", snr, seed,
               demix::wiener_filter(d, noise, truth_power, FilterGain::Matched), s, noise_power, 0,
               ctx);
        report("matched", snr, seed, demix::wiener_filter(d, noise, {}, FilterGain::Matched), s,
               noise_power, 0, ctx);
      }
      for (const auto estimator :
           {demix::SeparationEstimator::Bias, demix::SeparationEstimator::Realizations}) {
        const std::string name = demix::separation_estimator_name(estimator);
        if (!has(c.methods, name)) continue;
        for (const std::string& start : c.starts) {
          demix::SeparationOptions o;
          o.statistics = {
              {demix::WphOptions{.J = J, .L = 4, .dn = 2, .norm = demix::WphNorm::Auto}, 1.0}};
          if (c.with_ps) o.statistics.push_back({demix::PowerSpectrumOptions{}, 1.0});
          o.estimator = estimator;
          o.eras = c.eras;
          o.iterations = c.iterations;
          o.spectrum_eras = c.spectrum_eras;
          o.start = start_named(start);
          o.terms.contamination = c.contamination ? 1 : 0;
          o.terms.independence = c.independence ? 1 : 0;
          const demix::Separator sep(d, noise, o, demix::Grid2d{c.n, c.n}, ctx);
          bench::sync();
          const demix::SeparationResult r = sep.run();
          bench::sync();
          const std::string label =
              name + (c.with_ps ? "+ps" : "") + (c.spectrum_eras ? "-staged" : "") +
              (c.contamination ? "+contamination" : "") + (c.independence ? "+independence" : "") +
              (start == "observation" ? "" : "-from-" + start);
          if (c.speed)
            std::printf("{\"code\": \"demix-separation-speed\", \"method\": \"%s\", \"n\": %ld, "
                        "\"M\": %d, \"eras\": %d, \"iterations\": %d, \"seconds\": %.4g, "
                        "\"final_loss\": %.6g, \"device\": \"%s\"}\n",
                        label.c_str(), static_cast<long>(c.n), c.M, c.eras, c.iterations, r.seconds,
                        r.loss_history.back().back(), ctx.describe().c_str());
          else
            report(label, snr, seed, r.signal, s, noise_power, r.seconds, ctx);
          std::fflush(stdout);
        }
      }
    }
}

} // namespace

int main(int argc, char** argv) {
  try {
    run_cases(bench::start(argc, argv), argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "bench_separate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
