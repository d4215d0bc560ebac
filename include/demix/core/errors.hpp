#pragma once
// The exceptions demix throws. The library never prints or exits: it throws one of these with a
// message naming the file or argument, the value received and what is allowed; the CLI catches
// them in one place (cli/main.cpp) and maps them to exit codes.

#include <stdexcept>
#include <string>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

/// Base of every error demix throws on purpose.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A file cannot be found, opened, read or written (missing file, missing folder, permissions).
class IoError : public Error {
public:
  using Error::Error;
};

/// A file exists but its content is not what it claims or what demix supports: not FITS or npy,
/// truncated, corrupt header, unsupported pixel type.
class FormatError : public IoError {
public:
  using IoError::IoError;
};

/// A value is out of its allowed range: NaN/Inf pixels, an option outside its domain.
class ValueError : public Error {
public:
  using Error::Error;
};

/// A tensor or image has the wrong number of dimensions or the wrong extent.
class ShapeError : public Error {
public:
  using Error::Error;
};

/// The requested compute device is not available (e.g. CUDA asked for on a CPU-only build).
class DeviceError : public Error {
public:
  using Error::Error;
};

} // namespace demix
#pragma GCC visibility pop
