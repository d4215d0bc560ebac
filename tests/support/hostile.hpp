#pragma once
// Hostile inputs for the readers: deterministic mutations of valid files (truncations, byte flips,
// header fields set to absurd values) and a way to run one read in a child process, so that a
// crash, a hang or a runaway allocation is reported as that mutation's failure instead of killing
// the test program.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace demix::test {

/// A file's bytes and how they were made ("truncated to 100 bytes", "NAXIS1 = -5", ...).
struct Mutant {
  std::string name;
  std::string bytes;
};

std::string read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, const std::string& bytes);

/// The empty file, truncations at many offsets (every length below 16, `boundaries` +- 1, evenly
/// spread others), and `flips` single-byte edits (xor, set to a byte that means something in text
/// headers, deletion, duplication) at positions drawn from `seed`; three quarters of them fall in
/// [0, focus) (the header, where parsing happens).
std::vector<Mutant> byte_mutants(const std::string& valid, std::uint64_t seed, std::size_t focus,
                                 int flips, const std::vector<std::size_t>& boundaries = {});

/// `bytes` (a FITS file) with the value of the `occurrence`-th card (0 = first) whose keyword is
/// `key` replaced by `value` (right-justified in columns 11-30 when it is short, as the fixed
/// format writes numbers); the unchanged bytes if there is no such card.
std::string set_fits_card(std::string bytes, const std::string& key, const std::string& value,
                          int occurrence = 0);

/// What one read did.
struct ReadOutcome {
  enum class Kind {
    Read,         ///< returned normally
    TypedError,   ///< threw a demix::Error
    OtherError,   ///< threw anything else (a reader bug)
    Crashed,      ///< died of a signal or a sanitizer report (exit 99)
    TooSlow,      ///< still running after the time limit
    TooMuchMemory ///< its resident memory grew by more than the limit
  };
  Kind kind = Kind::Read;
  std::string message; ///< the exception's text, or the signal
  long rss_growth_kb = 0;
  bool acceptable() const { return kind == Kind::Read || kind == Kind::TypedError; }
};

/// Runs each of `reads` in a forked child (one child runs them in turn; after a crash or a hang a
/// new one goes on with the next), each limited to `seconds` and to `memory_bytes` of growth of
/// the resident set (the peak, reset before each read) and, except under AddressSanitizer, which
/// reserves terabytes, of the address space (so that an allocation of a size read from a header
/// fails even if never touched). A read that throws demix::Error is TypedError. LibTorch must run
/// single-threaded (at::set_num_threads(1)) so that the child needs no thread pool.
std::vector<ReadOutcome> run_isolated(const std::vector<std::function<void()>>& reads,
                                      std::size_t memory_bytes, unsigned seconds);

const char* kind_name(ReadOutcome::Kind kind);

} // namespace demix::test
