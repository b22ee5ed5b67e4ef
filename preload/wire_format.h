// wire_format.h: the census protocol spoken between libdriftwatch.so and any collector.
//
// This is the only header shared by the shim (preload/) and the collector (report/). It defines
// plain, fixed-layout records; docs/PROTOCOL.md explains the stream in prose for third parties.
//
// Thread-safety: declarations only. Allocation: none. Safe inside a hook: yes (constants and
// trivially copyable structs only; no code runs here).
//
// Stream: one AF_UNIX SOCK_STREAM connection per process (and per exec image). Every record is a
// RecordHeader followed by `length` payload bytes. All integers are little-endian (the shim only
// runs on x86-64 Linux). Readers must skip record types they do not know, so that later versions
// can add records without breaking old collectors.
//
// Order on a connection:
//   Hello                                   once, first
//   Image?                                  right after the Hello (absent from older shims):
//                                           which process image this is, and the how-manieth
//                                           connection of it, so a collector can join the
//                                           connections of one image into one series
//   then, once per census:
//     CensusBegin
//     ModuleList?                           only when the mapped modules changed since the last
//                                           ModuleList on this connection (always in the first)
//     BuildIds?                             right after a ModuleList: the ELF build-id of each
//                                           mapped image (absent from older shims)
//     SiteDef*                              stacks not yet defined on this connection
//     Counters*                             one per resource kind with changed sites
//     Limits?                               the process's limits (absent from older shims)
//     ThreadStates?                         what each site's live threads are doing
//     CensusEnd                             a census is complete only once this arrives
//
// A site's counters are cumulative since process start. A Counters record carries only the sites
// whose counters changed since the previous census sent on this connection; sites left out keep
// the values last sent. Live values are derived: live = acquired - released.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dw::wire {

inline constexpr uint32_t kProtocolVersion = 1;
// First four payload bytes of Hello, so a collector can reject a stranger quickly.
inline constexpr uint32_t kHelloMagic = 0x31435744;  // "DWC1"

// Upper bound on one record's payload; a reader treats anything larger as a corrupt stream.
inline constexpr uint32_t kMaxRecordLength = 64u << 20;
// Upper bound on frames per stack (DRIFTWATCH_DEPTH is clamped to this).
inline constexpr uint32_t kMaxDepth = 64;

enum class RecordType : uint32_t {
  kHello = 1,
  kCensusBegin = 2,
  kModuleList = 3,
  kSiteDef = 4,
  kCounters = 5,
  kCensusEnd = 6,
  kLimits = 7,
  kThreadStates = 8,
  kBuildIds = 9,
  kImage = 10,
};

// Resource kinds.
enum class Kind : uint32_t {
  kHeap = 0,
  kThreads = 1,
  kFds = 2,
  kTimers = 3,
};
inline constexpr uint32_t kKindCount = 4;

// Site id 0 is never defined; it means "unattributed" wherever a site id appears.
inline constexpr uint32_t kUnattributedSite = 0;

struct RecordHeader {
  uint32_t type;    // RecordType
  uint32_t length;  // payload bytes that follow
};
static_assert(sizeof(RecordHeader) == 8);

// Hello payload: this fixed part, then `exe_length` bytes of the executable path (no NUL).
struct Hello {
  uint32_t magic;             // kHelloMagic
  uint32_t protocol_version;  // kProtocolVersion
  uint32_t pid;
  uint32_t ppid;
  uint64_t start_time_ticks;  // field 22 of /proc/self/stat: with pid, a unique process identity
  uint64_t clock_ticks_per_second;
  uint64_t realtime_ns_at_hello;  // CLOCK_REALTIME when the connection was made
  uint32_t interval_ms;           // census interval in effect
  uint16_t depth;                 // maximum frames per stack in effect
  uint16_t mode;                  // kModeExact or kModeSampled (the heap kind only)
  uint32_t exe_length;
  uint32_t sample_mean_bytes;  // kModeSampled: mean bytes between heap samples; else 0
};
static_assert(sizeof(Hello) == 56);

// Image payload (at least this size; later fields may follow). A process image is one exec of
// one process: pid and start time stay the same across exec, the nonce does not. A census
// thread that had to step aside (unshare, setns, capset: docs/PITFALLS.md) comes back on a new
// connection of the same image, with a higher `connection_index`; site ids and the cumulative
// counters carry on, so a collector that still holds the earlier connection continues its
// series instead of starting a new process.
struct Image {
  uint64_t nonce;             // random, chosen when the shim starts in this image (or fork child)
  uint32_t connection_index;  // 0 for the image's first connection, then 1, 2, ...
  uint32_t reserved;
};
static_assert(sizeof(Image) == 16);

// Exact: every heap block is recorded at its site. Sampled: heap blocks are sampled by bytes
// (a Poisson process with mean `sample_mean_bytes`), and the heap kind's counters carry unbiased
// estimates: a sampled block of size s counts for 1/(1-exp(-s/mean)) blocks and as many times s
// bytes. Descriptors, threads and timers are exact in both modes.
inline constexpr uint16_t kModeExact = 0;
inline constexpr uint16_t kModeSampled = 1;

// CensusBegin payload.
struct CensusBegin {
  uint64_t sequence;          // 0, 1, 2, ... per connection; a gap means censuses were dropped
  uint64_t realtime_ns;       // CLOCK_REALTIME when the census was taken
  uint64_t monotonic_ns;      // CLOCK_MONOTONIC when the census was taken
  uint64_t rss_bytes;         // resident set size, /proc/self/statm
  uint32_t fd_count;          // entries in /proc/self/fd (including the shim's own socket)
  uint32_t thread_count;      // threads in the process (including the census thread)
  uint64_t censuses_dropped;  // censuses not sent because the collector was absent or slow
  uint64_t sites_overflowed;  // resources recorded as unattributed because the site table was full
  uint64_t table_overflowed;  // resources not tracked because the live-resource table was full
  uint64_t untracked_releases;  // releases of resources the shim never saw created
};
static_assert(sizeof(CensusBegin) == 72);

// ModuleList payload: `count` entries, each a ModuleEntry followed by `path_length` bytes.
// Every mapping of each code image (a file with an executable mapping) in /proc/self/maps is
// listed, in address order, so a collector can compute each module's load bias (start - offset
// of the mapping with the lowest offset); data files, devices and memfds are left out. After
// them come the code modules that dlclose() has unmapped since the process started, flagged
// kModuleUnloaded, oldest first: a site captured in a plugin that is gone by the next census still
// resolves. Their addresses may since have been reused by a live mapping, which then takes
// precedence.
struct ModuleListHeader {
  uint32_t count;
  // Bits 0-15: the lowest unload number from which every unload's mappings are listed (older
  // ones were pruned or dropped); bits 16-31: the number of dlclose calls begun so far. Both
  // modulo 2^16, 0 from older shims. See SiteDef::module_generation.
  uint32_t unload_history;
};
struct ModuleEntry {
  uint64_t start;
  uint64_t end;
  uint64_t file_offset;
  uint32_t flags;  // kModuleRead | kModuleWrite | kModuleExec
  uint32_t path_length;
};
static_assert(sizeof(ModuleEntry) == 32);
inline constexpr uint32_t kModuleRead = 1, kModuleWrite = 2, kModuleExec = 4;
inline constexpr uint32_t kModuleUnloaded = 8;
// With kModuleUnloaded: bits 16-31 of `flags` number the unload that removed the mapping
// (1, 2, ... modulo 2^16; see SiteDef::module_generation).
inline constexpr uint32_t kModuleUnloadShift = 16;

// BuildIds payload: a BuildIdsHeader, then `count` entries, each a BuildIdEntry followed by
// `length` bytes of the NT_GNU_BUILD_ID note's descriptor. `module_index` is the entry's position
// in the ModuleList just sent; only the first mapping of each ELF image (file offset 0) carries
// one. The build-id is read from the image in memory, so it names the file that was loaded even
// if the file at that path has since been replaced.
struct BuildIdsHeader {
  uint32_t count;
  uint32_t reserved;
};
struct BuildIdEntry {
  uint32_t module_index;
  uint32_t length;  // at most kMaxBuildIdLength
};
static_assert(sizeof(BuildIdEntry) == 8);
inline constexpr uint32_t kMaxBuildIdLength = 64;

// SiteDef payload: the fixed part, then `depth` uint64 return addresses, innermost first. The
// shim's own frames are already removed, so frame 0 is the return address into the function
// that called the interposed function (e.g. into operator new, or into user code).
struct SiteDef {
  uint32_t site_id;
  uint16_t depth;
  // The number of code unloads (dlclose) before the stack was captured, modulo 2^16: its
  // addresses belong to the modules mapped then. Unloaded ModuleList entries carry the number
  // of their own unload in the high half of `flags`. 0 from older shims.
  uint16_t module_generation;
};
static_assert(sizeof(SiteDef) == 8);

// Counters payload: the fixed part, then `count` SiteCounter entries.
struct CountersHeader {
  uint32_t kind;  // Kind
  uint32_t count;
};
struct SiteCounter {
  uint32_t site_id;
  uint32_t detail;          // kind-specific bits seen at this site: FdType bits for kFds,
                            // TimerNotify bits for kTimers, 0 otherwise
  uint64_t acquired;        // resources created at this site since start
  uint64_t released;        // of those, released since
  uint64_t acquired_bytes;  // heap: bytes requested; other kinds: 0
  uint64_t released_bytes;
};
static_assert(sizeof(SiteCounter) == 40);

// Detail bits of fd sites: what the site's descriptors are. One site can create several kinds
// (a helper that opens a file or a socket), so these are ORed.
enum FdType : uint32_t {
  kFdFile = 1u << 0,
  kFdDirectory = 1u << 1,
  kFdCharDevice = 1u << 2,
  kFdBlockDevice = 1u << 3,
  kFdPipe = 1u << 4,  // pipes and FIFOs
  kFdSocketUnix = 1u << 5,
  kFdSocketInet = 1u << 6,
  kFdSocketInet6 = 1u << 7,
  kFdSocketNetlink = 1u << 8,
  kFdSocketOther = 1u << 9,
  kFdEventfd = 1u << 10,
  kFdTimerfd = 1u << 11,
  kFdSignalfd = 1u << 12,
  kFdEpoll = 1u << 13,
  kFdInotify = 1u << 14,
  kFdFanotify = 1u << 15,
  kFdMemfd = 1u << 16,
  kFdPidfd = 1u << 17,
  kFdOtherAnon = 1u << 18,  // another anon_inode
  kFdUnknown = 1u << 31,
};

// Detail bits of timer sites: how the site's timers notify.
enum TimerNotify : uint32_t {
  kTimerSignal = 1u << 0,
  kTimerThread = 1u << 1,
  kTimerNone = 1u << 2,
  kTimerThreadId = 1u << 3,
};

// Limits payload: what the process's resources run into. 0 means "no limit" or "unknown".
struct Limits {
  uint64_t nofile_soft;  // RLIMIT_NOFILE
  uint64_t nofile_hard;
  uint64_t nproc_soft;           // RLIMIT_NPROC (counts every thread of the user)
  uint64_t pids_max;             // the pids cgroup's pids.max
  uint64_t threads_max;          // /proc/sys/kernel/threads-max
  uint64_t memory_limit_bytes;   // the cgroup's memory.max (v2) or memory.limit_in_bytes (v1)
  uint64_t memory_total_bytes;   // MemTotal from /proc/meminfo
  uint64_t address_space_bytes;  // RLIMIT_AS
};
static_assert(sizeof(Limits) == 64);

// ThreadStates payload: a ThreadStatesHeader, then `count` entries, each a ThreadSiteState
// followed by `wchan_length` bytes: the kernel wait channel most of the site's blocked threads
// sleep in (e.g. "futex_wait_queue"), empty if none.
struct ThreadStatesHeader {
  uint32_t count;
  uint32_t reserved;
};
struct ThreadSiteState {
  uint32_t site_id;
  uint32_t running;           // state R
  uint32_t sleeping;          // state S (interruptible wait)
  uint32_t disk_sleeping;     // state D
  uint32_t stopped;           // states T, t
  uint32_t exited_unjoined;   // returned, but never joined or detached: its stack is kept
  uint64_t longest_idle_ms;   // the longest time one of them has made no CPU progress
  uint32_t idle_over_minute;  // how many of them have made no CPU progress for over a minute
  uint32_t wchan_length;
};
static_assert(sizeof(ThreadSiteState) == 40);

// CensusEnd payload.
struct CensusEnd {
  uint64_t sequence;  // equals the CensusBegin's
  uint32_t flags;     // kCensusFinal: sent from the exit path; no census follows
  uint32_t reserved;
};
static_assert(sizeof(CensusEnd) == 16);
inline constexpr uint32_t kCensusFinal = 1;

}  // namespace dw::wire
