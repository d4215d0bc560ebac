// Library exceptions to Python exceptions (classes defined in python/demix/errors.py), with the
// library's message unchanged.

#include <demix/core/errors.hpp>

#include "bindings.hpp"

#include <c10/util/Exception.h>

namespace demix::python {

void bind_errors(py::module_& /*m: the classes live in demix.errors*/) {
  // Looked up once; kept alive for the life of the interpreter (translators may run at exit).
  const py::module_ errors = py::module_::import("demix.errors");
  const auto kept = [&](const char* name) { return py::object(errors.attr(name)).release(); };
  static const py::handle io_error = kept("IoError");
  static const py::handle format_error = kept("FormatError");
  static const py::handle value_error = kept("InvalidValueError");
  static const py::handle shape_error = kept("ShapeError");
  static const py::handle device_error = kept("DeviceError");
  static const py::handle error = kept("Error");
  // Most derived first: FormatError is an IoError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const demix::FormatError& e) {
      PyErr_SetString(format_error.ptr(), e.what());
    } catch (const demix::IoError& e) {
      PyErr_SetString(io_error.ptr(), e.what());
    } catch (const demix::ValueError& e) {
      PyErr_SetString(value_error.ptr(), e.what());
    } catch (const demix::ShapeError& e) {
      PyErr_SetString(shape_error.ptr(), e.what());
    } catch (const demix::DeviceError& e) {
      PyErr_SetString(device_error.ptr(), e.what());
    } catch (const demix::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    } catch (const c10::ValueError& e) { // LibTorch's own kinds, without the C++ backtrace
      PyErr_SetString(PyExc_ValueError, e.what_without_backtrace());
    } catch (const c10::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what_without_backtrace());
    } catch (const c10::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what_without_backtrace());
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what_without_backtrace());
    }
  });
}

} // namespace demix::python
