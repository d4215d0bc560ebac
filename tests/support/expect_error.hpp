#pragma once
// Checks that a call throws a given demix error whose message names what it should (the file, the
// keyword, the value received): the library's contract for bad input.

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace demix::test {

/// `f()` throws E (another exception type fails the test as it propagates) whose message holds
/// every word of `words`.
template <typename E, typename F>
void expect_error_naming(F&& f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const auto& w : words)
      EXPECT_NE(std::string(e.what()).find(w), std::string::npos)
          << "'" << w << "' not in: " << e.what();
  }
}

} // namespace demix::test
