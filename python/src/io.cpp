// Images in and out (io/image_io.hpp) with their FITS headers as 80-character cards; the Python
// side (python/demix/io.py) turns the cards into a dict and back.

#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>

#include "bindings.hpp"
#include "header.hpp"

#include <pybind11/stl.h>
#include <string>
#include <variant>
#include <vector>

namespace demix::python {

namespace {

NonFinitePolicy non_finite_policy(const std::string& name) {
  if (name == "reject") return NonFinitePolicy::Reject;
  if (name == "keep") return NonFinitePolicy::Keep;
  if (name == "zero") return NonFinitePolicy::Zero;
  if (name == "mean") return NonFinitePolicy::Mean;
  throw ValueError("nan must be one of reject, keep, zero, mean, got '" + name + "'");
}

PixelType pixel_type(const std::string& name) {
  if (name == "same") return PixelType::Same;
  if (name == "float32") return PixelType::Float32;
  if (name == "float64") return PixelType::Float64;
  throw ValueError("dtype must be one of same, float32, float64, got '" + name + "'");
}

} // namespace

FitsHeader header_from(const std::vector<Entry>& entries) {
  FitsHeader h;
  for (const auto& [key, value, comment] : entries) {
    if (key == "HISTORY" || key == "COMMENT") {
      const auto* text = std::get_if<std::string>(&value);
      if (!text) throw ValueError("header " + key + " entries must be text");
      if (key == "HISTORY")
        h.add_history(*text);
      else // COMMENT cards hold 72 characters of text each, as HISTORY cards
        for (std::size_t i = 0; i < text->size() || i == 0; i += 72)
          h.add_card("COMMENT " + text->substr(i, 72));
      continue;
    }
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string>)
            h.set(key, std::string_view(v), comment);
          else
            h.set(key, v, comment);
        },
        value);
  }
  return h;
}

void bind_io(py::module_& m) {
  m.def(
      "read_image",
      [](const std::string& spec, const std::string& nan) {
        const NonFinitePolicy policy = non_finite_policy(nan);
        Image image;
        {
          py::gil_scoped_release unlocked;
          image = read_image(spec, {.non_finite = policy});
        }
        return py::make_tuple(image.data, image.header.cards(), image.source, image.format);
      },
      py::arg("spec"), py::arg("nan") = "reject",
      "(data, cards, source, format) of a FITS or npy image.");
  m.def(
      "write_image",
      [](const std::string& path, const at::Tensor& data, const std::vector<Entry>& header,
         const std::string& dtype) {
        Image image{data, header_from(header), {}, {}};
        const PixelType type = pixel_type(dtype);
        py::gil_scoped_release unlocked;
        write_image(path, image, {.type = type});
      },
      py::arg("path"), py::arg("data"), py::arg("header"), py::arg("dtype") = "same");
}

} // namespace demix::python
