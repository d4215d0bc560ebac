#pragma once
// Galaxies of a batch of blends, and square stamps centred on them: cut out of the blend images, or
// added into them. The deblenders, the metrics and the CLI all pass galaxies this way.
//
// Conventions. Positions are 0-based pixel coordinates of the blend image (N, C, H, W): x is the
// column, y the row; the centre of pixel (row i, column j) is (x, y) = (j, i). A galaxy's "nearest
// pixel" is (floor(x + 1/2), floor(y + 1/2)). A stamp of odd size S = 2 h + 1 is centred on it: its
// pixel (i, j) lies on the blend pixel (row py - h + i, column px - h + j). Stamp pixels outside
// the blend are cropped (render) or read as 0 (extract).
//
// The galaxies of all blends are held in one flat list (M galaxies in all, those of blend n
// contiguous and in blend order), so that batches of blends with different galaxy counts need no
// padding: per-blend sums are index_add over `blend`.

#include <ATen/core/TensorBody.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// The nearest pixel of a position, floor(v + 1/2): v is a column (x) or row (y) in 0-based pixel
/// coordinates, and a position half-way between two pixel centres goes to the higher pixel. The one
/// rule shared by the simulator (which centres each galaxy's stamp there) and the deblenders (which
/// cut and place stamps there).
std::int64_t nearest_pixel(double v);
/// nearest_pixel of every element of a real tensor (any shape, any device): -> int64, same shape.
at::Tensor nearest_pixel(const at::Tensor& v);

/// M galaxies spread over N blends, flattened.
struct BlendGalaxies {
  at::Tensor xy;    // (M, 2) float64 CPU: x (column), y (row) of each galaxy
  at::Tensor blend; // (M) int64 CPU: index in [0, N) of the blend holding it, non-decreasing
  std::int64_t num_blends = 0; ///< N (blends may hold no galaxy)

  /// From one (G_n, 2) tensor of (x, y) per blend (G_n may be 0; any real dtype and device).
  static BlendGalaxies from_list(const std::vector<at::Tensor>& positions);
  /// From padded positions (N, G_max, 2) and the number of valid entries per blend (N) (the first
  /// counts[n] rows of blend n are used). ValueError for a count outside [0, G_max].
  static BlendGalaxies from_padded(const at::Tensor& positions /* (N, G_max, 2) */,
                                   const at::Tensor& counts /* (N) integer */);
  /// The galaxies of the blends `blends` (int64 (K), increasing), renumbered 0..K-1.
  BlendGalaxies select_blends(const at::Tensor& blends /* (K) int64 */) const;
  /// The galaxies of blend n: (G_n, 2) float64 CPU.
  at::Tensor positions_of(std::int64_t n) const;

  std::int64_t size() const { return xy.defined() ? xy.size(0) : 0; } ///< M
  at::Tensor counts() const; // -> (N) int64 CPU: galaxies per blend
  at::Tensor first() const;  // -> (N) int64 CPU: index of each blend's first galaxy in the list
  at::Tensor pixel() const;  // -> (M, 2) int64 CPU: nearest pixel (px, py), see nearest_pixel
  /// ShapeError / ValueError unless the fields are consistent (shapes, dtypes, blend sorted and in
  /// [0, num_blends), finite positions). `what` names the caller in the message.
  void check(const char* what) const;
};

/// Cuts stamps out of, and adds stamps into, N blend images of C x H x W pixels for a fixed list
/// of galaxies. The index table is built once (on `device`, with tensor operations); extract and
/// render are then one gather and one index_add over flat tensors each, whatever the number of
/// galaxies, and are each other's adjoint (so autograd through render is a gather and vice
/// versa). The table holds one int64 per stamp pixel and channel (C M S^2): 68 MB for 700
/// galaxies of 6 x 45 x 45. (A 1-D index_add measured 2-3x faster on CPU than one over the pixel
/// axis of a (C, pixels) or (pixels, C) tensor.)
class StampPlacer {
public:
  /// ValueError for an even or non-positive stamp size, or non-positive channels, height or
  /// width; galaxies.check() errors.
  StampPlacer(const BlendGalaxies& galaxies, std::int64_t channels, std::int64_t height,
              std::int64_t width, std::int64_t stamp_size, c10::Device device);

  /// Stamps around each galaxy: (N, C, H, W) -> (M, C, S, S), 0 outside the image. Differentiable.
  at::Tensor extract(const at::Tensor& frames /* (N, C, H, W) */) const;
  /// Sum of the stamps placed at their galaxies: (M, C, S, S) -> (N, C, H, W), the parts outside
  /// the image dropped. Differentiable.
  at::Tensor render(const at::Tensor& stamps /* (M, C, S, S) */) const;
  /// Each stamp alone in a frame of its own: (M, C, S, S) -> (M, C, H, W).
  at::Tensor render_each(const at::Tensor& stamps /* (M, C, S, S) */) const;
  /// Galaxy m's stamp cut from frame m (one frame per galaxy, e.g. deblended children):
  /// (M, C, H, W) -> (M, C, S, S). The adjoint of render_each.
  at::Tensor extract_each(const at::Tensor& frames /* (M, C, H, W) */) const;

  /// extract and render with the channel axis first, the layout in which both need no
  /// transposing copy (the deblender's inner loop keeps its images so).
  at::Tensor
  extract_channels_first(const at::Tensor& frames /* (C, N, H, W) */) const; // -> (C, M, S, S)
  at::Tensor
  render_channels_first(const at::Tensor& stamps /* (C, M, S, S) */) const; // -> (C, N, H, W)

  std::int64_t num_blends() const { return N_; }
  std::int64_t num_galaxies() const { return M_; }
  std::int64_t channels() const { return C_; }
  std::int64_t stamp_size() const { return S_; }
  std::int64_t height() const { return H_; }
  std::int64_t width() const { return W_; }

private:
  /// Indices into C x `frames` frames of H x W flattened channel-first, for every stamp pixel
  /// of every channel; out-of-image pixels go to one extra slot at the end.
  at::Tensor indices(const at::Tensor& frame_of /* (M) int64 */,
                     std::int64_t frames) const; // -> (C M S S)
  void check_frames(const at::Tensor& frames, std::int64_t n, bool channels_first,
                    const char* what) const;
  void check_stamps(const at::Tensor& stamps, bool channels_first, const char* what) const;
  /// Gathers (C, M, S, S) stamps from (C, frames, H, W) images with `index`.
  at::Tensor gather(const at::Tensor& frames_cf, const at::Tensor& index) const;
  /// Adds (C, M, S, S) stamps at `index` into zero frames: -> (C, frames, H, W).
  at::Tensor scatter(const at::Tensor& stamps_cf, const at::Tensor& index,
                     std::int64_t frames) const;

  std::int64_t N_ = 0, M_ = 0, C_ = 0, H_ = 0, W_ = 0, S_ = 0;
  at::Tensor cols_, rows_; // (M, S) int64 on device: image column / row of each stamp column / row
  at::Tensor index_;       // (C M S S) int64 on device, see indices()
};

} // namespace demix
#pragma GCC visibility pop
