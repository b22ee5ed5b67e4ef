// proc_sampler.h: the input source of `driftwatch collect --pid/--match`: the totals of processes
// the shim cannot enter (static binaries, Go programs, set-uid programs, services that cannot be
// restarted), read from outside through /proc. It is to those processes what the census socket
// is to processes under the shim: one sample per interval of RSS, threads and descriptors by
// type, with no call sites.
//
// One lifetime is a pid and its start time (/proc/PID/stat field 22). A WatchedProc holds an
// O_PATH descriptor of /proc/PID, opened once: the kernel ties it to that process, so reads
// through it fail (ESRCH/ENOENT) once the process is gone, even when the pid is already reused;
// each sample also compares the start time. Every read goes through that descriptor with
// openat/readlinkat and O_NOFOLLOW: no path is resolved through a link the process controls.
//
// Cost per sample: one read of /proc/PID/stat (RSS, threads, start time) and, when the fds are
// readable, one getdents of /proc/PID/fd and one readlinkat per descriptor.
// /proc/PID/fd of another user's process needs CAP_SYS_PTRACE (or being root): then only RSS
// and threads are sampled and `fds_denied` says so.
//
// Thread-safety: a WatchedProc is used by one thread; the free functions are stateless.
// Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "report/transport/peer.h"

namespace dw::report {

// What a descriptor refers to, from its /proc/PID/fd link target.
enum class FdClass : uint8_t {
  kFile,       // a path: regular files, directories, devices (/dev/null), memfd ("/memfd:...")
  kSocket,     // "socket:[inode]"
  kPipe,       // "pipe:[inode]" (FIFOs opened by path are files)
  kAnonInode,  // "anon_inode:[eventfd]", "[eventpoll]", "[timerfd]", "[signalfd]", "inotify"...
  kOther,      // anything else: namespaces ("net:[4026531840]"), unknown kinds
};
inline constexpr size_t kFdClassCount = 5;
// "files", "sockets", "pipes", "anon_inodes", "others".
const char* FdClassName(FdClass fd_class);
FdClass ClassifyFdTarget(std::string_view target);

// The fields of /proc/PID/stat a sample needs.
struct ProcStatSample {
  std::string comm;          // field 2, without its parentheses
  char state = '?';          // field 3; 'Z' zombie, 'X' dead
  uint32_t ppid = 0;         // field 4
  int64_t threads = 0;       // field 20
  uint64_t start_ticks = 0;  // field 22
  int64_t rss_pages = 0;     // field 24
};
// Parses the text of /proc/PID/stat ("pid (comm) S ppid ...", comm may hold spaces and ')').
std::optional<ProcStatSample> ParseProcStatSample(std::string_view text);

// One sample of a watched process.
struct ProcSample {
  uint64_t monotonic_ns = 0;
  uint64_t realtime_ns = 0;
  int64_t rss_bytes = 0;
  int64_t threads = 0;
  // Descriptors by FdClass; unset when /proc/PID/fd could not be read (permissions).
  std::optional<std::array<int64_t, kFdClassCount>> fds;
};

// Who a watched process is, read once when it is found.
struct ProcIdentityInfo {
  pid_t pid = 0;
  uint32_t ppid = 0;
  uint64_t start_ticks = 0;
  uid_t uid = 0;       // real uid, from /proc/PID/status
  std::string exe;     // the /proc/PID/exe link's target; "" when unreadable (permissions)
  ProcessNames names;  // comm and argv[0]'s basename
};

// How NAME of --match is compared with a process: equal to its command name as ps shows it
// (/proc/PID/comm); or, for a NAME longer than the 15 bytes the kernel keeps of comm, comm is
// NAME cut to 15 bytes and the basename of argv[0] is NAME; or equal to the basename of its
// executable (/proc/PID/exe). Exact, case-sensitive, no patterns.
bool MatchesName(std::string_view name, const ProcessNames& names, std::string_view exe);

class WatchedProc {
 public:
  // Opens /proc/PID and reads who it is. NotFound: no such process (or a zombie, or a kernel
  // thread, which has no executable and no memory of its own to watch).
  static absl::StatusOr<WatchedProc> Open(pid_t pid, const std::string& proc_root = "/proc");
  ~WatchedProc();
  WatchedProc(WatchedProc&& other) noexcept;
  WatchedProc& operator=(WatchedProc&& other) noexcept;
  WatchedProc(const WatchedProc&) = delete;
  WatchedProc& operator=(const WatchedProc&) = delete;

  const ProcIdentityInfo& identity() const { return identity_; }
  // Unset when the process is gone (exited, reaped, a zombie, or its pid now names another
  // lifetime) or has exec'd another program (exec_seen()).
  std::optional<ProcSample> Sample();
  // The process replaced its program (its command name and executable changed): as for the
  // shim, whose every exec image is a connection of its own, the old image's series ends here.
  bool exec_seen() const { return exec_seen_; }
  // /proc/PID/fd was refused (EACCES/EPERM) at least once; samples then carry no fds.
  bool fds_denied() const { return fds_denied_; }

 private:
  WatchedProc(int dir_fd, ProcIdentityInfo identity) : dir_fd_(dir_fd), identity_(identity) {}
  // Counts the descriptors by class; false when the directory cannot be read.
  bool CountFds(std::array<int64_t, kFdClassCount>& counts);

  int dir_fd_ = -1;
  ProcIdentityInfo identity_;
  bool fds_denied_ = false;
  bool exec_seen_ = false;
};

// Processes in `proc_root` whose names match one of `wanted` (MatchesName), zombies and kernel
// threads excluded, `exclude` (the collector itself) too. One directory scan, one read of
// comm per process, and a readlink of exe only when comm does not already match.
std::vector<pid_t> FindMatchingProcesses(const std::vector<std::string>& wanted, pid_t exclude,
                                         const std::string& proc_root = "/proc");

// Whether the process maps libdriftwatch.so (it runs under the shim, which reports its totals
// itself); false when its maps cannot be read.
bool MapsShim(pid_t pid, const std::string& proc_root = "/proc");

}  // namespace dw::report
