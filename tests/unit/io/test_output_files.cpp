// OutputFiles: outputs checked before any work, written under hidden names that keep their
// extension, put in place all together by commit() and removed without it.

#include <demix/core/errors.hpp>
#include <demix/io/image_io.hpp>
#include <demix/io/output_files.hpp>

#include "support/temp_dir.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <dirent.h>

using demix::test::TempDir;

namespace {

std::vector<std::string> hidden_files(const std::string& folder) {
  std::vector<std::string> names;
  DIR* d = ::opendir(folder.c_str());
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 1 && n[0] == '.' && n != "..") names.push_back(n);
  }
  ::closedir(d);
  return names;
}

std::string contents(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

} // namespace

TEST(OutputFiles, CommitPutsEveryOutputInPlaceAndKeepsExtensions) {
  TempDir dir;
  const std::string a = dir.path("a.fits.gz"), b = dir.path("b(1).json");
  demix::OutputFiles out;
  out.add(a, "-o");
  out.add(b, "--json");
  const std::string staged = out.staged(a);
  EXPECT_EQ(staged.substr(staged.size() - 8), ".fits.gz"); // the writer picks format by name
  demix::write_image(staged, demix::Image{at::ones({2, 3}), {}, ""});
  demix::write_text_file(out.staged(b), "{}");
  EXPECT_FALSE(std::ifstream(a).good()); // nothing in place before commit
  out.commit();
  EXPECT_EQ(demix::read_image(a).data.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(contents(b), "{}");
  EXPECT_TRUE(hidden_files(dir.path("")).empty());
}

TEST(OutputFiles, WithoutCommitNothingChanges) {
  TempDir dir;
  const std::string a = dir.path("a.json"), b = dir.path("b.json");
  std::ofstream(a) << "old";
  {
    demix::OutputFiles out;
    out.add(a, "-o");
    out.add(b, "--json");
    demix::write_text_file(out.staged(a), "new");
    // b is never written (the run failed before): commit refuses, nothing replaced.
    EXPECT_THROW(out.commit(), demix::IoError);
  }
  EXPECT_EQ(contents(a), "old");
  EXPECT_FALSE(std::ifstream(b).good());
  EXPECT_TRUE(hidden_files(dir.path("")).empty());
}

TEST(OutputFiles, RefusesCollisionsInputsAndUnwritableFolders) {
  TempDir dir;
  const std::string in = dir.path("in.npy");
  std::ofstream(in) << "x";
  demix::OutputFiles out;
  out.input(in + "[1]"); // a FITS selector names the same file
  EXPECT_THROW(out.add(in, "-o"), demix::ValueError);
  EXPECT_THROW(out.add(dir.path("./in.npy"), "-o"), demix::ValueError);
  out.add(dir.path("o.fits"), "-o");
  try {
    out.add(dir.path("sub/../o.fits"), "--json"); // "sub" does not exist: the folder check
    FAIL();
  } catch (const demix::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  try {
    out.add(dir.path("./o.fits"), "--json");
    FAIL();
  } catch (const demix::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("same file as -o"), std::string::npos) << e.what();
  }
  EXPECT_THROW(out.add(dir.path(""), "-o"), demix::IoError); // a folder
  EXPECT_THROW(out.staged(dir.path("never-added.fits")), demix::ValueError);
}

TEST(OutputFiles, SignalCleanupRemovesTemporariesBeingWritten) {
  TempDir dir;
  demix::OutputFiles out;
  out.add(dir.path("a.npy"), "-o");
  std::ofstream(out.staged(dir.path("a.npy"))) << "partial";
  ASSERT_EQ(hidden_files(dir.path("")).size(), 1u);
  demix::remove_temporary_files(); // what the SIGINT handler calls
  EXPECT_TRUE(hidden_files(dir.path("")).empty());
}
