// census.h: the collector's decoded, in-memory form of the census protocol (preload/wire_format.h).
//
// These are plain value types produced by CensusStreamDecoder and consumed by the process model,
// the symbolizer and the reports. They are owned by one connection at a time.
//
// Thread-safety: plain data, no internal locking. Allocation: yes (collector code).
// Never runs inside a hook: this is collector code, it never runs in the traced process.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "preload/wire_format.h"

namespace dw::report {

// Who sent a stream. pid + start_time_ticks identify a process uniquely; an exec image of the same
// process opens a new connection with the same pid and start time but (usually) another exe.
struct ProcessIdentity {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint64_t start_time_ticks = 0;
  uint64_t clock_ticks_per_second = 0;
  std::string exe;
};

// The Hello record.
struct HelloInfo {
  ProcessIdentity identity;
  uint32_t protocol_version = 0;
  uint64_t realtime_ns_at_hello = 0;
  uint32_t interval_ms = 0;
  uint16_t depth = 0;
  uint16_t mode = 0;               // wire::kModeExact or kModeSampled
  uint32_t sample_mean_bytes = 0;  // sampled mode: mean bytes between heap samples
  // The Image record after the Hello (absent from older shims): which exec image of the process
  // this is, and the how-manieth connection of that image (a census thread that stepped aside
  // comes back on a new one; wire_format.h).
  struct Image {
    uint64_t nonce = 0;
    uint32_t connection_index = 0;
  };
  std::optional<Image> image;
};

// One file-backed mapping from a ModuleList record.
struct ModuleMapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  uint32_t flags = 0;
  std::string path;
  // Lowercase hex of the image's GNU build-id as read in the target's memory; set on the first
  // mapping of each image (file offset 0) when the shim sent a BuildIds record.
  std::string build_id;
  // The file at `path` was deleted or replaced after it was mapped ("(deleted)" in the maps).
  bool deleted = false;

  // The mapping was removed by dlclose(); it is kept so that older sites still resolve.
  bool unloaded() const { return (flags & wire::kModuleUnloaded) != 0; }
  // For an unloaded mapping, the number of the unload that removed it (modulo 2^16).
  uint16_t unload_number() const {
    return unloaded() ? static_cast<uint16_t>(flags >> wire::kModuleUnloadShift) : 0;
  }
};

// A ModuleList is shared by every census and site that was decoded while it was in effect, so a
// site defined before a dlclose() can still be symbolised against the modules of its time.
struct ModuleList : std::vector<ModuleMapping> {
  using std::vector<ModuleMapping>::vector;
  // From the ModuleList header (absent from older shims: has_unload_history false): every
  // unload numbered from `unload_history_start` on is complete in the list, and
  // `unload_generation` dlclose calls had begun when it was sent (both modulo 2^16).
  bool has_unload_history = false;
  uint16_t unload_history_start = 0;
  uint16_t unload_generation = 0;
};
using ModuleListPtr = std::shared_ptr<const ModuleList>;

// A stack defined by a SiteDef record.
struct SiteStack {
  std::vector<uint64_t> return_addresses;  // innermost first
  // Code unloads (dlclose) before the stack was captured, modulo 2^16 (0 from older shims).
  uint16_t module_generation = 0;
  ModuleListPtr modules;  // module list in effect when the site was defined
};

// Cumulative counters of one site, as last sent.
struct SiteCounters {
  uint64_t acquired = 0;
  uint64_t released = 0;
  uint64_t acquired_bytes = 0;
  uint64_t released_bytes = 0;
  // Kind-specific bits seen at the site, as last sent (the shim ORs them up over the site's
  // life): wire::FdType bits for fds, wire::TimerNotify bits for timers, 0 otherwise.
  uint32_t detail = 0;

  // Signed on purpose: the shim reads acquired and released at slightly different times, so a
  // racing release can make released exceed acquired for one census. We report that, not wrap.
  int64_t Live() const { return static_cast<int64_t>(acquired - released); }
  int64_t LiveBytes() const { return static_cast<int64_t>(acquired_bytes - released_bytes); }

  bool operator==(const SiteCounters&) const = default;
};

// Counters of all sites of one kind, keyed by site id (kUnattributedSite included when sent).
using KindCounters = absl::flat_hash_map<uint32_t, SiteCounters>;

// The process-wide figures carried by CensusBegin.
struct CensusTotals {
  uint64_t rss_bytes = 0;
  uint32_t fd_count = 0;
  uint32_t thread_count = 0;
  uint64_t censuses_dropped = 0;
  uint64_t sites_overflowed = 0;
  uint64_t table_overflowed = 0;
  uint64_t untracked_releases = 0;
};

// The Limits record: what the process's resources run into. 0 means "no limit" or "unknown".
struct ProcessLimits {
  uint64_t nofile_soft = 0;  // RLIMIT_NOFILE
  uint64_t nofile_hard = 0;
  uint64_t nproc_soft = 0;           // RLIMIT_NPROC (counts every thread of the user)
  uint64_t pids_max = 0;             // the pids cgroup's pids.max
  uint64_t threads_max = 0;          // /proc/sys/kernel/threads-max
  uint64_t memory_limit_bytes = 0;   // the cgroup's memory limit
  uint64_t memory_total_bytes = 0;   // MemTotal
  uint64_t address_space_bytes = 0;  // RLIMIT_AS

  bool operator==(const ProcessLimits&) const = default;
};

// One entry of a ThreadStates record: what the live threads created at one site are doing.
struct ThreadSiteState {
  uint32_t running = 0;           // state R
  uint32_t sleeping = 0;          // state S
  uint32_t disk_sleeping = 0;     // state D
  uint32_t stopped = 0;           // states T, t
  uint32_t exited_unjoined = 0;   // returned but never joined or detached
  uint64_t longest_idle_ms = 0;   // longest time one of them made no CPU progress
  uint32_t idle_over_minute = 0;  // how many made no CPU progress for over a minute
  std::string wchan;  // where most of the blocked ones sleep ("futex_wait_queue"); may be empty

  // Threads accounted for in the states above.
  uint64_t Total() const {
    return uint64_t{running} + sleeping + disk_sleeping + stopped + exited_unjoined;
  }
  bool operator==(const ThreadSiteState&) const = default;
};

// Thread states of one census, keyed by site id (kUnattributedSite included when sent).
using ThreadStates = absl::flat_hash_map<uint32_t, ThreadSiteState>;

// One complete census (CensusBegin..CensusEnd) with counters carried forward: `counters` holds
// every site ever sent on the connection with its latest values, not only the changed ones.
struct Census {
  uint64_t sequence = 0;
  uint64_t realtime_ns = 0;
  uint64_t monotonic_ns = 0;
  CensusTotals totals;
  bool final = false;
  ModuleListPtr modules;
  std::array<KindCounters, wire::kKindCount> counters;
  // The latest Limits received on the connection (carried forward like the module list); absent
  // when the shim never sent one (shims before 0.2).
  std::optional<ProcessLimits> limits;
  // ThreadStates of this census only: a snapshot, not carried forward, since threads that ended
  // have no state. Empty when the census carried no ThreadStates record.
  ThreadStates thread_states;
  bool has_thread_states = false;  // a ThreadStates record arrived in this census
};

// Adds `value` to `total`, stopping at the int64 limits: live figures come from other processes,
// and a hostile one can send values whose sum would overflow.
inline void AddSaturating(int64_t& total, int64_t value) {
  if (__builtin_add_overflow(total, value, &total)) total = value > 0 ? INT64_MAX : INT64_MIN;
}

// Names used in reports and JSON ("heap", "threads", "fds", "timers").
const char* KindName(wire::Kind kind);

// Names of the wire::FdType bits in `detail`, lowest bit first: "file", "directory",
// "char_device", "block_device", "pipe", "socket/unix", "socket/inet", "socket/inet6",
// "socket/netlink", "socket", "eventfd", "timerfd", "signalfd", "epoll", "inotify", "fanotify",
// "memfd", "pidfd", "anon_inode", "unknown"; bits this collector does not know as "bit<N>".
std::vector<std::string> FdTypeNames(uint32_t detail);

// Names of the wire::TimerNotify bits in `detail`: "signal", "thread", "none", "thread_id";
// unknown bits as "bit<N>".
std::vector<std::string> TimerNotifyNames(uint32_t detail);

}  // namespace dw::report
