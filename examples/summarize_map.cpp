// Reads a map (FITS or npy), standardises log(I) as the scattering literature does, and writes it
// as FITS with the input's header plus a PNG preview. Checks its own output by reading it back.
//
//   example_summarize_map ../shared/data/dust/I_1.npy /tmp/logI.fits /tmp/logI.png

#include <demix/demix.hpp>

#include <ATen/ATen.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " MAP OUT.fits OUT.png\n";
    return 2;
  }
  try {
    const demix::Context ctx({.device = demix::DeviceKind::Auto});
    demix::Image image = demix::read_image(argv[1]);
    at::Tensor x = ctx.to(image.data).log(); // positive intensities -> log(I)
    x = (x - x.mean()) / x.std();
    image.data = x;
    image.header.add_history("log, standardised to zero mean and unit variance");
    demix::write_image(argv[2], image);
    demix::write_preview(argv[3], x, {.stretch = demix::Stretch::Linear});

    const demix::PixelSummary s = demix::summarize(demix::read_image(argv[2]).data);
    std::cout << "log(I) standardised on " << ctx.describe() << ": mean " << s.mean << ", std "
              << s.std << "\n";
    const bool ok = std::abs(s.mean) < 1e-5 && std::abs(s.std - 1) < 1e-3; // float32 rounding
    return ok ? 0 : 1;
  } catch (const demix::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
