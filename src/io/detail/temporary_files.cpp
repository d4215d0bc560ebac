#include "io/detail/temporary_files.hpp"

#include <demix/io/output_files.hpp>

#include "io/detail/files.hpp"

#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

namespace demix::detail {
namespace {

constexpr char kPrefix[] = ".demix-tmp_";

// The list lives in fixed storage, so that a signal handler can walk it without allocating or
// locking: a slot's path is written while the slot is Claimed and read only once it is Listed.
enum SlotState : int { Free = 0, Claimed = 1, Listed = 2 };
struct Slot {
  std::atomic<int> state{Free};
  char path[4096] = {};
};
constexpr std::size_t kSlots = 256;
std::array<Slot, kSlots>& slots() {
  static std::array<Slot, kSlots> s;
  return s;
}

void list_temporary(const std::string& path) {
  if (path.size() >= sizeof(Slot::path)) return; // too long to list: removed by its owner only
  for (auto& slot : slots()) {
    int expected = Free;
    if (slot.state.compare_exchange_strong(expected, Claimed)) {
      std::memcpy(slot.path, path.c_str(), path.size() + 1);
      slot.state.store(Listed);
      return;
    }
  }
  // All slots taken (hundreds of files written at once): such a file is still removed by its
  // owner on errors, only not by a signal handler.
}

/// This host's name in [A-Za-z0-9-], so that it cannot contain the separator '_'.
const std::string& host_tag() {
  static const std::string tag = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return std::string("host");
    std::string t(name);
    for (char& c : t)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
    return t;
  }();
  return tag;
}

} // namespace

std::string make_temporary_name(const std::string& target, const std::string& suffix) {
  static std::atomic<unsigned> counter{0};
  const std::string folder = parent_folder(target);
  { // one sweep per folder and process
    static std::mutex mutex;
    static std::set<std::string> swept;
    std::lock_guard<std::mutex> lock(mutex);
    if (swept.insert(folder).second) remove_stale_temporaries(folder);
  }
  std::string plain = file_name(target);
  for (char& c : plain)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  // The name's end (its extension) is what matters; a long name's start is dropped so that the
  // temporary stays within the file system's 255 bytes, where the target itself fits.
  if (plain.size() > 120) plain = plain.substr(plain.size() - 120);
  std::string path = folder + "/" + kPrefix + host_tag() + "_" + std::to_string(::getpid()) + "_" +
                     std::to_string(counter++) + "_" + plain + suffix;
  list_temporary(path);
  return path;
}

void forget_temporary(const std::string& path) {
  for (auto& slot : slots())
    if (slot.state.load() == Listed && path == slot.path) {
      slot.state.store(Free);
      return;
    }
}

void discard_temporary(const std::string& path) {
  std::remove(path.c_str());
  forget_temporary(path);
}

void remove_stale_temporaries(const std::string& folder) {
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) return;
  const std::string mine = std::string(kPrefix) + host_tag() + "_";
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.compare(0, mine.size(), mine) != 0) continue;
    const auto end = name.find('_', mine.size());
    if (end == std::string::npos) continue;
    long pid = 0;
    try {
      pid = std::stol(name.substr(mine.size(), end - mine.size()));
    } catch (...) {
      continue;
    }
    // Another process of this host still writing it answers kill(pid, 0) (or EPERM if owned by
    // another user): only a file whose process is gone is stale.
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      std::remove((folder + "/" + name).c_str());
  }
  ::closedir(dir);
}

} // namespace demix::detail

namespace demix {

void remove_temporary_files() noexcept {
  for (auto& slot : detail::slots())
    if (slot.state.load() == detail::Listed) ::unlink(slot.path); // async-signal-safe
}

namespace {
void on_signal(int sig) {
  remove_temporary_files();
  std::signal(sig, SIG_DFL); // then die of the signal, so that the caller sees how it ended
  std::raise(sig);
}
} // namespace

void remove_temporary_files_on_signals() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(sig, &action, nullptr);
  }
}

} // namespace demix
