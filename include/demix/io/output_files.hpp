#pragma once
// The files one command writes, checked before the work starts and put in place all-or-nothing:
// a failed or interrupted run leaves no partial output and every existing file unchanged.
//
//   OutputFiles out;
//   out.input("map.fits");
//   out.add("coeffs.fits", "-o");          // checked now: folder, writable, distinct, not an input
//   out.add("coeffs.json", "--json");
//   ... the long work ...
//   write_coefficients_fits(out.staged("coeffs.fits"), ...);
//   write_text_file(out.staged("coeffs.json"), ...);
//   out.commit();                          // both renamed into place; without it, both removed

#include <string>
#include <vector>

#pragma GCC visibility push(default) // exported from libdemix.so (the rest is hidden)
namespace demix {

class OutputFiles {
public:
  OutputFiles() = default;
  ~OutputFiles(); ///< removes the staged files unless commit() succeeded
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;

  /// A file the command reads, which no output may replace. A FITS selector ("a.fits[1]") is
  /// ignored.
  void input(const std::string& path);

  /// Registers an output; `what` names it in messages (an option, "the model"). IoError unless
  /// its folder exists and is writable and it is not a folder; ValueError if it is an input or
  /// another output (the same file under any spelling). Returns the path, for chaining.
  const std::string& add(const std::string& path, const std::string& what);

  /// An output the command writes in place during the run (a checkpoint, meant to survive a
  /// crash): checked like add() and kept distinct from the others, but neither staged nor
  /// committed.
  void add_unstaged(const std::string& path, const std::string& what);

  /// Where the writer of a registered output writes: a hidden temporary beside it that keeps its
  /// extension (so the format and ".gz" compression still follow the name). ValueError for a path
  /// not registered.
  std::string staged(const std::string& path);

  /// Renames every staged file into place. IoError, naming the output, if one was not written
  /// (a writer was skipped) or a rename fails; outputs renamed before the failure stay.
  void commit();

  /// The registered outputs, in order.
  std::vector<std::string> paths() const;

private:
  struct Output {
    std::string path, what, key, staged;
    bool in_place = false; ///< add_unstaged
  };
  std::vector<std::string> input_keys_;
  std::vector<Output> outputs_;
  bool committed_ = false;
};

/// Removes the temporary files this process is writing (the staged outputs and the atomic
/// writers' temporaries). Async-signal-safe: for a handler of SIGINT and SIGTERM.
void remove_temporary_files() noexcept;

/// Installs handlers of SIGINT, SIGTERM and SIGHUP that call remove_temporary_files() and then
/// end the process by the same signal (for programs: the command line calls it first thing).
void remove_temporary_files_on_signals();

} // namespace demix
#pragma GCC visibility pop
