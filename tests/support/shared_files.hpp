#pragma once
// The project's shared folder (dust maps, peer reference outputs), for the regression tests that
// compare against it. Missing files fail those tests, never skip them.

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace demix::test {

/// The shared folder: the environment variable DEMIX_SHARED_DIR when set, else the CMake cache
/// variable of the same name (default ../shared beside the source tree).
std::string shared_dir();

/// `shared_dir() + "/reference/peers/"`: pywph, kymatio and Cheng's outputs on the shared dust
/// crop (provenance in that folder's README.md).
std::string peers_dir();

/// Success when every path names a readable file; otherwise a failure naming the first missing
/// path and the variable to set. Use as ASSERT_TRUE(shared_files_exist({...})).
::testing::AssertionResult shared_files_exist(const std::vector<std::string>& paths);

} // namespace demix::test
