#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// Read: float32/float64/complex64/complex128 and integers (int8..int64, uint8), little- or
// big-endian, C or Fortran order, any number of dimensions; the result is always a native-endian,
// C-contiguous CPU tensor of the same shape and type.
// Write: the tensor's dtype (float32/float64/complex64/complex128), little-endian, C order.

#include <ATen/core/TensorBody.h>

#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Throws IoError (missing/unreadable), FormatError (not npy, truncated, unsupported dtype such as
/// '<u4', '<f2' or '|b1', object arrays).
at::Tensor read_npy(const std::string& path); // -> any shape, dtype as stored, CPU

/// Atomic: written to a temporary file in the same folder, then renamed.
/// Throws ValueError for an unsupported dtype, IoError when the folder is not writable.
void write_npy(const std::string& path, const at::Tensor& data /* any shape, any device */);

} // namespace demix
#pragma GCC visibility pop
