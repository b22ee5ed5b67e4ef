#include "report/transport/proc_sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dw::report {
namespace {

// The kernel keeps 15 bytes of a command name (TASK_COMM_LEN - 1).
constexpr size_t kCommBytes = 15;
// PF_KTHREAD in the flags of /proc/PID/stat (field 9): a kernel thread.
constexpr uint64_t kKernelThreadFlag = 0x00200000;
// /proc/PID/maps is read up to this size: enough for any real process.
constexpr size_t kMaxMapsBytes = 8 << 20;

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads the file `name` under the directory `dir_fd`, never through a symbolic link, up to
// `limit` bytes. Unset on error, with errno kept.
std::optional<std::string> ReadAt(int dir_fd, const char* name, size_t limit) {
  UniqueFd fd(openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return std::nullopt;
  std::string text;
  char buffer[4096];
  while (text.size() < limit) {
    const ssize_t got = read(fd.get(), buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (got == 0) break;
    text.append(buffer, static_cast<size_t>(got));
  }
  return text;
}

// The target of the link `name` under `dir_fd` (readlinkat never follows it); unset on error.
std::optional<std::string> ReadLinkAt(int dir_fd, const char* name) {
  char target[4096];
  const ssize_t length = readlinkat(dir_fd, name, target, sizeof(target));
  if (length < 0) return std::nullopt;
  return std::string(target, static_cast<size_t>(length));
}

// The non-empty fields of `text` between `separator`s.
std::vector<std::string_view> Fields(std::string_view text, char separator) {
  std::vector<std::string_view> fields;
  while (!text.empty()) {
    const size_t end = std::min(text.find(separator), text.size());
    if (end > 0) fields.push_back(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return fields;
}

// A whole decimal field (a '-' sign for signed types).
template <typename T>
bool ParseNumber(std::string_view text, T* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

std::string_view Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

uint64_t ClockNs(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
}

// Field 9 (flags) of /proc/PID/stat, to tell kernel threads.
uint64_t StatFlags(std::string_view text) {
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos) return 0;
  const std::vector<std::string_view> fields = Fields(text.substr(close + 1), ' ');
  uint64_t flags = 0;
  if (fields.size() > 6 && ParseNumber(fields[6], &flags)) return flags;
  return 0;
}

// The real uid ("Uid:\t<real>\t<effective>...") of /proc/PID/status text.
uid_t RealUid(std::string_view status) {
  for (std::string_view line : Fields(status, '\n')) {
    if (!line.starts_with("Uid:")) continue;
    const std::vector<std::string_view> ids = Fields(line.substr(4), '\t');
    uid_t uid = 0;
    if (!ids.empty() && ParseNumber(ids[0], &uid)) return uid;
  }
  return static_cast<uid_t>(-1);
}

ProcessNames NamesAt(int dir_fd) {
  ProcessNames names;
  if (std::optional<std::string> comm = ReadAt(dir_fd, "comm", 64); comm.has_value()) {
    names.comm = std::move(*comm);
    if (!names.comm.empty() && names.comm.back() == '\n') names.comm.pop_back();
  }
  if (std::optional<std::string> cmdline = ReadAt(dir_fd, "cmdline", 4096); cmdline.has_value()) {
    names.argv0 = std::string(Basename(std::string_view(cmdline->c_str())));
  }
  return names;
}

bool Gone(int error) { return error == ENOENT || error == ESRCH; }

}  // namespace

const char* FdClassName(FdClass fd_class) {
  switch (fd_class) {
    case FdClass::kFile:
      return "files";
    case FdClass::kSocket:
      return "sockets";
    case FdClass::kPipe:
      return "pipes";
    case FdClass::kAnonInode:
      return "anon_inodes";
    case FdClass::kOther:
      return "others";
  }
  return "others";
}

FdClass ClassifyFdTarget(std::string_view target) {
  if (target.starts_with('/')) return FdClass::kFile;
  if (target.starts_with("socket:[")) return FdClass::kSocket;
  if (target.starts_with("pipe:[")) return FdClass::kPipe;
  if (target.starts_with("anon_inode:")) return FdClass::kAnonInode;
  return FdClass::kOther;
}

std::optional<ProcStatSample> ParseProcStatSample(std::string_view text) {
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  const std::vector<std::string_view> fields = Fields(text.substr(close + 1), ' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  if (fields.size() < 22 || fields[0].empty()) return std::nullopt;
  ProcStatSample stat;
  stat.comm = std::string(text.substr(open + 1, close - open - 1));
  stat.state = fields[0][0];
  if (!ParseNumber(fields[1], &stat.ppid) || !ParseNumber(fields[17], &stat.threads) ||
      !ParseNumber(fields[19], &stat.start_ticks) || !ParseNumber(fields[21], &stat.rss_pages)) {
    return std::nullopt;
  }
  return stat;
}

bool MatchesName(std::string_view name, const ProcessNames& names, std::string_view exe) {
  if (name.empty()) return false;
  if (names.comm == name) return true;
  if (name.size() > kCommBytes && names.comm == name.substr(0, kCommBytes) && names.argv0 == name) {
    return true;
  }
  // An executable replaced on disk (an upgrade) reads "/path (deleted)".
  if (exe.ends_with(" (deleted)")) exe.remove_suffix(std::string_view(" (deleted)").size());
  return !exe.empty() && Basename(exe) == name;
}

absl::StatusOr<WatchedProc> WatchedProc::Open(pid_t pid, const std::string& proc_root) {
  const std::string path = absl::StrCat(proc_root, "/", pid);
  const int dir_fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd < 0) {
    if (Gone(errno) || errno == ENOTDIR || errno == ELOOP) {
      return absl::NotFoundError(absl::StrCat("no process ", pid));
    }
    return absl::PermissionDeniedError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  ProcIdentityInfo identity;
  identity.pid = pid;
  WatchedProc proc(dir_fd, identity);
  const std::optional<std::string> text = ReadAt(dir_fd, "stat", 4096);
  const std::optional<ProcStatSample> stat =
      text.has_value() ? ParseProcStatSample(*text) : std::nullopt;
  if (!stat.has_value() || stat->state == 'Z' || stat->state == 'X') {
    return absl::NotFoundError(absl::StrCat("no process ", pid, " (gone, or a zombie)"));
  }
  if ((StatFlags(*text) & kKernelThreadFlag) != 0) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " is a kernel thread"));
  }
  proc.identity_.ppid = stat->ppid;
  proc.identity_.start_ticks = stat->start_ticks;
  proc.identity_.exe = ReadLinkAt(dir_fd, "exe").value_or("");
  proc.identity_.names = NamesAt(dir_fd);
  proc.identity_.uid = RealUid(ReadAt(dir_fd, "status", 16384).value_or(""));
  return proc;
}

WatchedProc::~WatchedProc() {
  if (dir_fd_ >= 0) close(dir_fd_);
}

WatchedProc::WatchedProc(WatchedProc&& other) noexcept
    : dir_fd_(std::exchange(other.dir_fd_, -1)),
      identity_(std::move(other.identity_)),
      fds_denied_(other.fds_denied_),
      exec_seen_(other.exec_seen_) {}

WatchedProc& WatchedProc::operator=(WatchedProc&& other) noexcept {
  if (this != &other) {
    if (dir_fd_ >= 0) close(dir_fd_);
    dir_fd_ = std::exchange(other.dir_fd_, -1);
    identity_ = std::move(other.identity_);
    fds_denied_ = other.fds_denied_;
    exec_seen_ = other.exec_seen_;
  }
  return *this;
}

std::optional<ProcSample> WatchedProc::Sample() {
  ProcSample sample;
  sample.monotonic_ns = ClockNs(CLOCK_MONOTONIC);
  sample.realtime_ns = ClockNs(CLOCK_REALTIME);
  const std::optional<std::string> text = ReadAt(dir_fd_, "stat", 4096);
  if (!text.has_value()) return std::nullopt;
  const std::optional<ProcStatSample> stat = ParseProcStatSample(*text);
  if (!stat.has_value() || stat->state == 'Z' || stat->state == 'X' ||
      stat->start_ticks != identity_.start_ticks) {
    return std::nullopt;
  }
  if (stat->comm != identity_.names.comm) {
    // An exec changes both; a thread renaming itself (prctl PR_SET_NAME) only the name.
    if (ReadLinkAt(dir_fd_, "exe").value_or("") != identity_.exe) {
      exec_seen_ = true;
      return std::nullopt;
    }
    identity_.names.comm = stat->comm;
  }
  static const int64_t page_bytes = sysconf(_SC_PAGESIZE);
  sample.rss_bytes = stat->rss_pages * page_bytes;
  sample.threads = stat->threads;
  std::array<int64_t, kFdClassCount> counts{};
  if (CountFds(counts)) {
    sample.fds = counts;
  } else if (Gone(errno)) {
    return std::nullopt;
  }
  return sample;
}

bool WatchedProc::CountFds(std::array<int64_t, kFdClassCount>& counts) {
  UniqueFd fd_dir(openat(dir_fd_, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (fd_dir.get() < 0) {
    if (errno == EACCES || errno == EPERM) fds_denied_ = true;
    return false;
  }
  // getdents64 into a buffer on the stack: no DIR allocation per sample.
  alignas(8) char buffer[16384];
  while (true) {
    const long got = syscall(SYS_getdents64, fd_dir.get(), buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EACCES || errno == EPERM) fds_denied_ = true;
      return false;
    }
    if (got == 0) return true;
    for (long offset = 0; offset < got;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buffer + offset);
      offset += entry->d_reclen;
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;  // "." and ".."
      char target[256];
      const ssize_t length = readlinkat(fd_dir.get(), entry->d_name, target, sizeof(target));
      if (length < 0) continue;  // closed since the listing
      ++counts[static_cast<size_t>(
          ClassifyFdTarget(std::string_view(target, static_cast<size_t>(length))))];
    }
  }
}

std::vector<pid_t> FindMatchingProcesses(const std::vector<std::string>& wanted, pid_t exclude,
                                         const std::string& proc_root) {
  std::vector<pid_t> found;
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) return found;
  while (const dirent* entry = readdir(dir)) {
    pid_t pid = 0;
    if (!ParseNumber(std::string_view(entry->d_name), &pid) || pid <= 0 || pid == exclude) {
      continue;
    }
    UniqueFd pid_dir(openat(dirfd(dir), entry->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW));
    if (pid_dir.get() < 0) continue;
    ProcessNames names;
    if (std::optional<std::string> comm = ReadAt(pid_dir.get(), "comm", 64); comm.has_value()) {
      names.comm = std::move(*comm);
      if (!names.comm.empty() && names.comm.back() == '\n') names.comm.pop_back();
    }
    bool matched = false;
    for (const std::string& name : wanted) {
      // argv[0] only matters for a name longer than comm can hold, and only when comm is its cut.
      if (name.size() > kCommBytes && names.comm.size() == kCommBytes &&
          name.starts_with(names.comm) && names.argv0.empty()) {
        names.argv0 = NamesAt(pid_dir.get()).argv0;
      }
      matched |= MatchesName(name, names, "");
    }
    if (!matched) {
      const std::string exe = ReadLinkAt(pid_dir.get(), "exe").value_or("");
      for (const std::string& name : wanted) matched |= MatchesName(name, {}, exe);
    }
    if (matched) found.push_back(pid);
  }
  closedir(dir);
  return found;
}

bool MapsShim(pid_t pid, const std::string& proc_root) {
  const std::string path = absl::StrCat(proc_root, "/", pid);
  UniqueFd dir(open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.get() < 0) return false;
  const std::optional<std::string> maps = ReadAt(dir.get(), "maps", kMaxMapsBytes);
  return maps.has_value() && maps->find("/libdriftwatch.so") != std::string::npos;
}

}  // namespace dw::report
