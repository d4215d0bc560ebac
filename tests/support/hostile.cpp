#include "support/hostile.hpp"

#include <demix/core/errors.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <set>
#include <stdexcept>
#include <sys/resource.h>
#include <sys/wait.h>
#include <typeinfo>

#include <cxxabi.h>
#include <signal.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define DEMIX_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEMIX_TEST_ASAN 1
#endif
#endif

namespace demix::test {

namespace {

/// Field `index` of /proc/self/statm (0 = address space, 1 = resident), in bytes.
std::size_t statm_bytes(int index) {
  std::ifstream in("/proc/self/statm");
  std::size_t v = 0;
  for (int i = 0; i <= index; ++i) in >> v;
  return v * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::string demangled(const char* name) {
  int status = 0;
  char* text = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && text ? text : name;
  std::free(text);
  return out;
}

void write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

} // namespace

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test: cannot read " + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("test: cannot write " + path);
}

std::vector<Mutant> byte_mutants(const std::string& valid, std::uint64_t seed, std::size_t focus,
                                 int flips, const std::vector<std::size_t>& boundaries) {
  std::vector<Mutant> out{{"empty file", ""}};
  std::set<std::size_t> lengths;
  for (std::size_t n = 1; n < 16; ++n) lengths.insert(n);
  for (std::size_t b : boundaries)
    for (std::size_t n : {b - 1, b, b + 1}) lengths.insert(n);
  for (std::size_t k = 1; k < 24; ++k) lengths.insert(valid.size() * k / 24);
  lengths.insert(valid.size() - 1);
  for (std::size_t n : lengths)
    if (n > 0 && n < valid.size())
      out.push_back({"truncated to " + std::to_string(n) + " bytes", valid.substr(0, n)});
  if (valid.empty()) return out;

  // mt19937_64's output is fixed by the standard: the same mutations on every platform.
  std::mt19937_64 rng(seed);
  static const std::string special("0123456789 -+.eE'=(),/TFN\0\xff\x80", 28);
  for (int i = 0; i < flips; ++i) {
    const std::size_t limit = i % 4 != 3 ? std::min(focus, valid.size()) : valid.size();
    const std::size_t pos = rng() % limit;
    std::string b = valid;
    std::string what = "byte " + std::to_string(pos) + " ";
    switch (rng() % 5) {
    case 0: {
      const int bit = static_cast<int>(rng() % 8);
      b[pos] = static_cast<char>(b[pos] ^ (1 << bit));
      what += "bit " + std::to_string(bit) + " flipped";
      break;
    }
    case 1:
      b[pos] = static_cast<char>(rng() % 256);
      what += "set to " + std::to_string(static_cast<unsigned char>(b[pos]));
      break;
    case 2:
      b[pos] = special[rng() % special.size()];
      what += "set to " + std::to_string(static_cast<unsigned char>(b[pos]));
      break;
    case 3:
      b.erase(pos, 1);
      what += "deleted";
      break;
    default:
      b.insert(pos, 1, b[pos]);
      what += "duplicated";
      break;
    }
    out.push_back({what, std::move(b)});
  }
  return out;
}

std::string set_fits_card(std::string bytes, const std::string& key, const std::string& value,
                          int occurrence) {
  std::string k = key;
  k.resize(8, ' ');
  for (std::size_t i = 0; i + 80 <= bytes.size(); i += 80) {
    if (bytes.compare(i, 8, k) != 0 || bytes.compare(i + 8, 2, "= ") != 0) continue;
    if (occurrence-- > 0) continue;
    std::string v = value.size() < 20 ? std::string(20 - value.size(), ' ') + value : value;
    v.resize(70, ' ');
    bytes.replace(i + 10, 70, v);
    break;
  }
  return bytes;
}

namespace {

long high_water_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

void reset_high_water() { std::ofstream("/proc/self/clear_refs") << "5"; }

/// One read's result as the child sends it: index, kind, growth, message length, message.
struct Record {
  std::uint32_t index;
  std::int32_t kind;
  std::int64_t growth_kb;
  std::uint32_t length;
};

[[noreturn]] void child(const std::vector<std::function<void()>>& reads, std::size_t first,
                        std::size_t memory_bytes, unsigned seconds, int fd) {
  for (std::size_t i = first; i < reads.size(); ++i) {
#ifndef DEMIX_TEST_ASAN
    const rlim_t limit = statm_bytes(0) + memory_bytes;
    const rlimit lim{limit, RLIM_INFINITY};
    ::setrlimit(RLIMIT_AS, &lim);
#endif
    reset_high_water();
    const long before_kb = high_water_kb();
    ::alarm(seconds);
    ReadOutcome::Kind kind = ReadOutcome::Kind::Read;
    std::string message;
    try {
      reads[i]();
    } catch (const demix::Error& e) {
      kind = ReadOutcome::Kind::TypedError;
      message = e.what();
    } catch (const std::exception& e) {
      kind = ReadOutcome::Kind::OtherError;
      message = demangled(typeid(e).name()) + ": " + e.what();
    } catch (...) {
      kind = ReadOutcome::Kind::OtherError;
      message = "an exception of unknown type";
    }
    ::alarm(0);
    message = message.substr(0, 600);
    const Record r{static_cast<std::uint32_t>(i), static_cast<std::int32_t>(kind),
                   high_water_kb() - before_kb, static_cast<std::uint32_t>(message.size())};
    write_all(fd, std::string(reinterpret_cast<const char*>(&r), sizeof r) + message);
  }
  ::_exit(0); // no atexit handlers, no GoogleTest teardown in the child
}

} // namespace

std::vector<ReadOutcome> run_isolated(const std::vector<std::function<void()>>& reads,
                                      std::size_t memory_bytes, unsigned seconds) {
  using Kind = ReadOutcome::Kind;
  std::vector<ReadOutcome> out(reads.size());
  std::size_t next = 0;
  while (next < reads.size()) {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr); // or the child's exit would print the parent's buffers again
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("test: pipe failed");
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("test: fork failed");
    if (pid == 0) {
      ::close(fds[0]);
      child(reads, next, memory_bytes, seconds, fds[1]);
    }
    ::close(fds[1]);
    std::string bytes;
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    for (std::size_t at = 0; at + sizeof(Record) <= bytes.size();) {
      Record r{};
      std::memcpy(&r, bytes.data() + at, sizeof r);
      at += sizeof r;
      ReadOutcome& o = out[r.index];
      o.kind = static_cast<Kind>(r.kind);
      o.rss_growth_kb = r.growth_kb;
      o.message = bytes.substr(at, r.length);
      at += r.length;
      if (o.acceptable() && o.rss_growth_kb > static_cast<long>(memory_bytes / 1024)) {
        o.kind = Kind::TooMuchMemory;
        o.message = "resident memory grew by " + std::to_string(o.rss_growth_kb) + " kB";
      }
      next = r.index + 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) break; // every read reported
    if (next >= reads.size()) break;                          // died on exit: not a read's doing
    ReadOutcome& o = out[next++]; // the read the child was in when it died
    if (WIFSIGNALED(status)) {
      const int sig = WTERMSIG(status);
      o.kind = sig == SIGALRM ? Kind::TooSlow : Kind::Crashed;
      o.message = std::string("signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")";
    } else {
      o.kind = Kind::Crashed;
      o.message = WEXITSTATUS(status) == 99 ? "sanitizer report (exit 99; see the output above)"
                                            : "exit code " + std::to_string(WEXITSTATUS(status));
    }
  }
  return out;
}

const char* kind_name(ReadOutcome::Kind kind) {
  switch (kind) {
  case ReadOutcome::Kind::Read: return "read";
  case ReadOutcome::Kind::TypedError: return "demix error";
  case ReadOutcome::Kind::OtherError: return "non-demix exception";
  case ReadOutcome::Kind::Crashed: return "crash";
  case ReadOutcome::Kind::TooSlow: return "hang (time limit)";
  case ReadOutcome::Kind::TooMuchMemory: return "memory beyond the bound";
  }
  return "?";
}

} // namespace demix::test
