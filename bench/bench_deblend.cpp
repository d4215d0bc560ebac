// Deblending quality and speed on a simulated blend dataset (`demix simulate blends`), with the
// MADNESS paper's metrics (Biswas+2024), for demix's MADNESS deblender, demix's classical
// (SDSS-style) deblender, and optionally scarlet2 (models from bench/deblend/run_scarlet2.py on
// the same file). Every method is given the true positions and scored by the same code against
// the noiseless truth stamps. One JSON line per method:
//   bench_deblend blends.fits model.pt [cpu|cuda] [scarlet2_models.fits]
// plus a line of Adam-step quantiles; DEMIX_STEPS_CURVE=1 adds MADNESS capped at fewer steps,
// DEMIX_NO_GRAPH=1 MADNESS without CUDA graphs (MadnessOptions::cuda_graphs), DEMIX_VARIANTS and
// DEMIX_SHRINK other decoder computes and shrink fractions (with per-check timings), and
// DEMIX_WARM_DATASET=other.fits times MADNESS after it has deblended another batch (see below),
// DEMIX_PER_GALAXY=file.csv appends each galaxy's figures per method (paired comparisons).
// Metrics per galaxy, on S x S stamps centred on its nearest pixel (the dataset's STAMPS):
//   flux: elliptical aperture (as the MADNESS paper's sep.sum_ellipse) on the model and on the
//         truth, from the truth catalogue: axis ratio q = (1 - |e|) / (1 + |e|) of the shear-
//         convention (e1, e2), major axis at theta = atan2(e2, e1) / 2 from +x towards +y, and
//         semi-axes 2 sqrt(h^2 + (FWHM_b / 2)^2) per band for h = hlr / sqrt(q) and hlr sqrt(q):
//         the half-light ellipse (area preserving, sqrt(h_a h_b) = hlr), each axis widened in
//         quadrature by the PSF's half FWHM, doubled; relative residual per band summarised by
//         mean |r|, median and 68% half-width; g - r colour error;
//   SSIM and pixel cosine similarity per band; ellipticity (adaptive moments) of the r-band model
//   against that of the truth, |delta e|.
// Speed: wall time of the whole dataset in one call (after a warm-up call on 8 blends), in blends
// per second, for the first call at this size ("demix-madness") and for the same call repeated
// ("demix-madness-repeat"); with DEMIX_WARM_DATASET, the first call comes after a call on the
// other dataset ("-after-other-batch": a pipeline's steady state, whose working sets differ from
// this one's); scarlet2's from its file (JAX compilation included). MADNESS runs its decoder as
// `demix deblend` does (DecoderCompute::for_fitting: float16 upsampling on CUDA).

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/deblend/classical.hpp>
#include <demix/deblend/madness.hpp>
#include <demix/deblend/metrics.hpp>
#include <demix/io/fits.hpp>
#include <demix/models/madness_model.hpp>
#include <demix/sim/simulate.hpp>

#include "timing.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

/// A JSON number, or null when it is not finite (scarlet2 has no convergence flag, say).
std::string number(double v, const char* format = "%.4g") {
  char buf[32];
  std::snprintf(buf, sizeof buf, format, v);
  return std::isfinite(v) ? buf : "null";
}

std::string list(const at::Tensor& v /* (B) */) {
  std::string s = "[";
  const at::Tensor c = v.to(at::kCPU, at::kDouble).contiguous();
  for (int64_t i = 0; i < c.numel(); ++i)
    s += (i ? ", " : "") + number(c[i].item<double>(), "%.5g");
  return s + "]";
}

double finite_mean(const at::Tensor& v) {
  const at::Tensor f = v.to(at::kDouble).flatten();
  const at::Tensor ok = at::isfinite(f);
  return ok.any().item<bool>() ? f.masked_select(ok).mean().item<double>() : NAN;
}

struct Truth {
  at::Tensor stamps;                  // (G, B, S, S)
  at::Tensor centres;                 // (G, 2) x, y in stamp pixels
  demix::EllipticalAperture aperture; // a, b (G, B) semi-axes, pixels; theta (G)
  at::Tensor flux;                    // (G, B) aperture flux of the truth
  at::Tensor e;                       // (G, 2) r-band ellipticity of the truth
};

void report(const std::string& method, const at::Tensor& model /* (G, B, S, S) */, const Truth& t,
            int64_t n_blends, double seconds, double converged, const std::string& device) {
  const at::Tensor m = model.to(at::kCPU, at::kDouble);
  const at::Tensor flux = demix::aperture_flux(m, t.centres, t.aperture);
  const demix::ResidualSummary r =
      demix::summarize_residuals(demix::relative_residual(flux, t.flux));
  const demix::ResidualSummary c =
      demix::summarize_residuals(demix::colour_error(flux, t.flux, 1, 2));
  const at::Tensor ssim = demix::ssim(m, t.stamps), cosine = demix::cosine_similarity(m, t.stamps);
  const demix::Shapes shapes = demix::measure_shapes(m.select(1, 2));
  const at::Tensor de = (shapes.ellipticity - t.e).norm(2, 1);
  // DEMIX_PER_GALAXY=FILE: each galaxy's figures too, one CSV row per method and galaxy (appended),
  // for comparisons of methods on the same galaxies (bench/deblend/compare_paired.py).
  if (const char* path = std::getenv("DEMIX_PER_GALAXY")) {
    std::FILE* f = std::fopen(path, "a");
    if (!f) throw demix::IoError(std::string("cannot append to DEMIX_PER_GALAXY ") + path);
    if (std::ftell(f) == 0)
      std::fprintf(f, "method,galaxy,flux_res_g,flux_res_r,flux_res_i,gr_error,e_error,ssim_r\n");
    const at::Tensor res = demix::relative_residual(flux, t.flux).contiguous();
    const at::Tensor gr = demix::colour_error(flux, t.flux, 1, 2).contiguous();
    const at::Tensor ssim_r = ssim.select(1, 2).contiguous();
    for (int64_t g = 0; g < m.size(0); ++g)
      std::fprintf(f, "%s,%ld,%.7g,%.7g,%.7g,%.7g,%.7g,%.7g\n", method.c_str(),
                   static_cast<long>(g), res[g][1].item<double>(), res[g][2].item<double>(),
                   res[g][3].item<double>(), gr[g].item<double>(), de[g].item<double>(),
                   ssim_r[g].item<double>());
    std::fclose(f);
  }
  std::printf("{\"method\": \"%s\", \"blends\": %ld, \"galaxies\": %ld, \"seconds\": %.4g, "
              "\"blends_per_s\": %.4g, \"converged\": %s, \"device\": \"%s\", "
              "\"flux_mean_abs\": %s, \"flux_median\": %s, \"flux_spread68\": %s, "
              "\"gr_mean_abs\": %.4g, \"gr_median\": %.4g, \"gr_spread68\": %.4g, "
              "\"ssim\": %s, \"cosine\": %s, \"e_error_mean\": %s, \"e_error_median\": %s}\n",
              method.c_str(), static_cast<long>(n_blends), static_cast<long>(m.size(0)), seconds,
              n_blends / seconds, number(converged).c_str(), device.c_str(),
              list(r.mean_abs).c_str(), list(r.median).c_str(), list(r.spread68).c_str(),
              c.mean_abs.item<double>(), c.median.item<double>(), c.spread68.item<double>(),
              list(at::nanmean(ssim, 0)).c_str(), list(at::nanmean(cosine, 0)).c_str(),
              number(finite_mean(de)).c_str(),
              number(de.masked_select(at::isfinite(de)).numel()
                         ? de.masked_select(at::isfinite(de)).median().item<double>()
                         : NAN)
                  .c_str());
  std::fflush(stdout);
}

/// The true galaxy positions of a blend dataset, blend by blend.
demix::BlendGalaxies true_positions(const demix::SimulatedDataset& d) {
  const at::Tensor x = d.truth.column("x").values.to(at::kDouble);
  const at::Tensor y = d.truth.column("y").values.to(at::kDouble);
  const at::Tensor blend = d.truth.column("blend_id").values.to(at::kLong);
  std::vector<at::Tensor> positions(d.images.size(0));
  for (int64_t n = 0; n < d.images.size(0); ++n) {
    const at::Tensor sel = (blend == n).nonzero().flatten();
    positions[n] = at::stack({x.index_select(0, sel), y.index_select(0, sel)}, 1);
  }
  return demix::BlendGalaxies::from_list(positions);
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_deblend blends.fits model.pt [cpu|cuda] [scarlet2_models.fits]\n";
    return 2;
  }
  try {
    const std::string device = argc > 3 ? argv[3] : "auto";
    const demix::Context ctx({.device = device == "cpu"    ? demix::DeviceKind::Cpu
                                        : device == "cuda" ? demix::DeviceKind::Cuda
                                                           : demix::DeviceKind::Auto});
    bench::on_cuda = ctx.device().is_cuda();
    const demix::SimulatedDataset d = demix::read_dataset(argv[1]);
    if (d.kind != "blends")
      throw demix::ValueError(std::string(argv[1]) + " is not a blend dataset");
    const int64_t N = d.images.size(0), B = d.images.size(1), S = d.stamps.size(-1);
    const at::Tensor x = d.truth.column("x").values.to(at::kDouble);
    const at::Tensor y = d.truth.column("y").values.to(at::kDouble);
    const demix::BlendGalaxies galaxies = true_positions(d);

    // Truth: stamps, elliptical apertures (hlr, e1, e2 and PSF FWHM) and fluxes, r-band shapes.
    Truth t;
    t.stamps = d.stamps.to(at::kDouble);
    const double pixscale = d.header.number("PIXSCALE").value_or(0.2);
    t.centres = at::stack({x - d.truth.column("stamp_x0").values.to(at::kDouble),
                           y - d.truth.column("stamp_y0").values.to(at::kDouble)},
                          1);
    const at::Tensor hlr = d.truth.column("hlr").values.to(at::kDouble); // arcsec
    std::vector<double> fwhm;
    for (int64_t b = 0; b < B; ++b)
      fwhm.push_back(d.header.number("FWHM" + std::to_string(b + 1)).value_or(0.7));
    const at::Tensor half_fwhm = at::tensor(fwhm, at::kDouble) / 2;
    const at::Tensor e1 = d.truth.column("e1").values.to(at::kDouble);
    const at::Tensor e2 = d.truth.column("e2").values.to(at::kDouble);
    const at::Tensor e = at::sqrt(e1.square() + e2.square()), q = (1 - e) / (1 + e);
    const auto axis = [&](const at::Tensor& h /* (G) arcsec */) { // -> (G, B) pixels
      return 2 * at::sqrt(h.unsqueeze(1).square() + half_fwhm.square().unsqueeze(0)) / pixscale;
    };
    t.aperture = {axis(hlr / q.sqrt()), axis(hlr * q.sqrt()), 0.5 * at::atan2(e2, e1)};
    t.flux = demix::aperture_flux(t.stamps, t.centres, t.aperture);
    t.e = demix::measure_shapes(t.stamps.select(1, 2)).ellipticity;

    const at::Tensor images = ctx.to(d.images);
    const at::Tensor sigmas = d.sigma.to(ctx.device(), ctx.real_dtype());
    const std::string where = ctx.describe();

    // MADNESS.
    // The decoder as `demix deblend` runs it (DecoderCompute::for_fitting: float16 on CUDA).
    auto prior =
        std::make_shared<demix::MadnessModel>(demix::MadnessModel::load(argv[2], ctx.device()));
    const demix::DecoderCompute fitting = demix::DecoderCompute::for_fitting(ctx.device());
    prior->vae().set_decoder_compute(fitting);
    std::string suffix;
    const demix::MadnessDeblender madness(prior, {}, ctx);
    const at::Tensor warm = at::arange(std::min<int64_t>(8, N), at::kLong);
    madness.deblend(images.index_select(0, warm.to(ctx.device())), galaxies.select_blends(warm),
                    sigmas);
    // DEMIX_WARM_DATASET=other.fits: first deblend another batch of blends (untimed), as a
    // pipeline would have, so that "first call" is this batch's call in a warm process.
    if (const char* other = std::getenv("DEMIX_WARM_DATASET")) {
      const demix::SimulatedDataset o = demix::read_dataset(other);
      madness.deblend(ctx.to(o.images), true_positions(o),
                      o.sigma.to(ctx.device(), ctx.real_dtype()));
      suffix += "-after-other-batch";
    }
    // One timed call on the whole dataset, scored and reported as `name`.
    const auto timed = [&](const demix::MadnessDeblender& deb, const std::string& name) {
      const double t1 = bench::now_after_sync();
      demix::MadnessResult r = deb.deblend(images, galaxies, sigmas);
      report(name, r.stamps, t, N, bench::now_after_sync() - t1, r.converged_fraction(), where);
      return r;
    };
    const demix::MadnessResult mr = timed(madness, "demix-madness" + suffix);
    // The same call again: what a pipeline deblending batch after batch of this size sees, once
    // LibTorch and cuDNN have set up the shapes of the shrinking working set (first call: above).
    timed(madness, "demix-madness" + suffix + "-repeat");
    // DEMIX_NO_GRAPH=1: the same, first call and repeat, with eager Adam steps (no CUDA graphs).
    if (std::getenv("DEMIX_NO_GRAPH")) {
      demix::MadnessOptions o;
      o.cuda_graphs = false;
      const demix::MadnessDeblender eager(prior, o, ctx);
      for (const char* call : {"", "-repeat"})
        timed(eager, std::string("demix-madness-no-graph") + call);
    }
    { // Adam steps per blend: the slowest blends set the length of the batched run.
      const at::Tensor st = mr.steps.to(at::kDouble);
      auto q = [&](double p) { return at::quantile(st, p).item<double>(); };
      std::printf("{\"figure\": \"madness_steps\", \"mean\": %.4g, \"p50\": %.4g, \"p90\": %.4g, "
                  "\"p99\": %.4g, \"max\": %.4g}\n",
                  st.mean().item<double>(), q(0.5), q(0.9), q(0.99), q(1.0));
    }
    // DEMIX_STEPS_CURVE=1: time and quality when Adam stops at fewer steps (MADNESS's is 200).
    if (std::getenv("DEMIX_STEPS_CURVE")) {
      for (int k : {40, 60, 80, 120, 160}) {
        demix::MadnessOptions o;
        o.max_steps = k;
        timed(demix::MadnessDeblender(prior, o, ctx), "demix-madness-max" + std::to_string(k));
      }
    }
    // DEMIX_VARIANTS="float,cl,half-cl,..." with DEMIX_SHRINK="0,0.5,...": MADNESS's speed and
    // quality per decoder compute (GalaxyVae::set_decoder_compute: float = as trained, cl =
    // channels-last, half / bf16 = tensor-core precision of the upsampling convolutions) and
    // shrink fraction (MadnessOptions::shrink_fraction), first call and repeat, each followed by
    // the call's segments: at each convergence test, [step, blends running, galaxies decoded per
    // step, milliseconds since the call began].
    if (const char* variants = std::getenv("DEMIX_VARIANTS")) {
      const auto split = [](std::string text) {
        std::vector<std::string> parts;
        for (size_t pos = 0; pos <= text.size();) {
          const size_t end = std::min(text.find(',', pos), text.size());
          if (end > pos) parts.push_back(text.substr(pos, end - pos));
          pos = end + 1;
        }
        return parts;
      };
      const char* shrinks = std::getenv("DEMIX_SHRINK");
      for (const std::string& v : split(variants)) {
        demix::DecoderCompute c;
        c.channels_last = v.find("cl") != std::string::npos;
        if (v.rfind("half", 0) == 0) c.conv_dtype = at::kHalf;
        if (v.rfind("bf16", 0) == 0) c.conv_dtype = at::kBFloat16;
        prior->vae().set_decoder_compute(c);
        for (const std::string& f : split(shrinks ? shrinks : "0")) {
          std::vector<std::array<double, 4>> segments;
          double start = 0;
          demix::MadnessOptions o;
          o.shrink_fraction = std::stod(f);
          o.progress = [&](const demix::MadnessProgress& p) {
            segments.push_back({double(p.step), double(p.running_blends),
                                double(p.working_galaxies),
                                1e3 * (bench::now_after_sync() - start)});
          };
          const demix::MadnessDeblender deb(prior, o, ctx);
          for (const char* call : {"", "-repeat"}) {
            segments.clear();
            start = bench::now_after_sync();
            timed(deb, "demix-madness-" + v + "-shrink" + f + call);
            std::printf("{\"figure\": \"madness_segments\", \"variant\": \"%s-shrink%s%s\", "
                        "\"segments\": [",
                        v.c_str(), f.c_str(), call);
            for (size_t i = 0; i < segments.size(); ++i)
              std::printf("%s[%g, %g, %g, %.1f]", i ? ", " : "", segments[i][0], segments[i][1],
                          segments[i][2], segments[i][3]);
            std::printf("]}\n");
          }
        }
      }
      prior->vae().set_decoder_compute(fitting);
    }
    // DEMIX_PROFILE=trace.json: one more MADNESS run, eager (a replayed step is one opaque op),
    // under LibTorch's legacy profiler (run with CUDA_LAUNCH_BLOCKING=1 so that each op's span
    // covers its kernels; see profile_summary.py).
    if (const char* trace = std::getenv("DEMIX_PROFILE")) {
      demix::MadnessOptions o;
      o.cuda_graphs = false;
      const demix::MadnessDeblender eager(prior, o, ctx);
      eager.deblend(images, galaxies, sigmas);
      torch::autograd::profiler::RecordProfile guard(trace);
      eager.deblend(images, galaxies, sigmas);
      bench::now_after_sync();
    }

    // Classical (SDSS-style symmetric templates).
    const demix::ClassicalDeblender classical({}, ctx);
    classical.deblend(images.index_select(0, warm.to(ctx.device())), galaxies.select_blends(warm),
                      sigmas);
    const double t0 = bench::now_after_sync();
    const demix::ClassicalResult cr = classical.deblend(images, galaxies, sigmas);
    const double classical_s = bench::now_after_sync() - t0;
    report("demix-classical", cr.stamps(S), t, N, classical_s, 1.0, where);

    // scarlet2, from its runner's file (scored on the blends it deblended).
    if (argc > 4) {
      const demix::FitsImage s2 = demix::read_fits(std::string(argv[4]) + "[MODELS]");
      const int64_t n2 = static_cast<int64_t>(s2.header.number("NBLENDS").value_or(N));
      const int64_t g2 = (d.truth.column("blend_id").values < n2).sum().item<int64_t>();
      const demix::EllipticalAperture& a = t.aperture;
      Truth sub{t.stamps.narrow(0, 0, g2),
                t.centres.narrow(0, 0, g2),
                {a.a.narrow(0, 0, g2), a.b.narrow(0, 0, g2), a.theta.narrow(0, 0, g2)},
                t.flux.narrow(0, 0, g2),
                t.e.narrow(0, 0, g2)};
      report("scarlet2", s2.data.narrow(0, 0, g2), sub, n2,
             s2.header.number("SECONDS").value_or(NAN), NAN,
             "cpu (jax, " + s2.header.value("JAX").value_or("?") + ")");
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_deblend: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
