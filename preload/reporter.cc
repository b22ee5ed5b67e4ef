#include "preload/reporter.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "preload/module_map.h"
#include "preload/raw_log.h"
#include "preload/record_writer.h"
#include "preload/site_counters.h"
#include "preload/stack_table.h"
#include "preload/thread_state.h"

namespace dw {
namespace {

constexpr uint32_t kMaxBackoffMs = 5000;
// The final census may delay exit() by this much at most when the collector is slow.
constexpr int kFinalFlushMs = 250;
// A site id reserved but not yet written blocks the definitions behind it. A writer finishes in
// microseconds; an id still unwritten after this many censuses belonged to a thread that no
// longer exists (it was mid-insert when the process forked) and is skipped.
constexpr int kMaxStalledCensuses = 3;

// The census socket is moved this far below the soft fd limit, away from the low numbers a
// target may expect to get back from open() ("lowest free fd") or may close in bulk.
constexpr int kHighFdMargin = 64;

int RawSocketCall(long number, long a, long b, long c, long d = 0, long e = 0, long f = 0) {
  return static_cast<int>(syscall(number, a, b, c, d, e, f));
}

// Returns the socket moved above the target's usual fd range, or -1 (and closes it) if that is
// impossible: staying at a low number would break the "lowest free fd" the target relies on.
int MoveToHighFd(int fd) {
  rlimit limit;
  long floor = 0;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    floor = limit.rlim_cur > 2 * kHighFdMargin ? static_cast<long>(limit.rlim_cur) - kHighFdMargin
                                               : static_cast<long>(limit.rlim_cur) / 2;
  }
  int high = floor > 2 ? static_cast<int>(syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, floor)) : -1;
  syscall(SYS_close, fd);
  return high;
}

bool SameFile(int fd, dev_t device, ino_t inode) {
  struct stat status;
  return syscall(SYS_fstat, fd, &status) == 0 && status.st_dev == device && status.st_ino == inode;
}

uint64_t HashBytes(uint64_t hash, const char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

}  // namespace

bool Reporter::Start(const char* socket_path, uint32_t interval_ms, uint16_t depth,
                     const CensusSources& sources) {
  strncpy(socket_path_, socket_path, sizeof(socket_path_) - 1);
  interval_ms_ = interval_ms;
  depth_ = depth;
  sources_ = sources;
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    if (sources_.kinds[kind].counters == nullptr) continue;
    size_t bytes = size_t{sources_.kinds[kind].counters->max_sites()} * 2 * sizeof(uint64_t);
    last_sent_[kind] = static_cast<uint64_t*>(os::MapPages(bytes));
    if (last_sent_[kind] == nullptr) {
      finished_ = true;  // nothing may ever be sent from a half-initialised reporter
      return false;
    }
  }
  if (!StartThread()) {
    finished_ = true;
    return false;
  }
  return true;
}

bool Reporter::StartThread() {
  // All signals blocked in the census thread: a target that routes signals to one thread of
  // its choosing must never see them delivered to ours (heaptrack, KDE bug 378494).
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attributes, 256 * 1024);
  pthread_t thread;
  int error = pthread_create(&thread, &attributes, &Reporter::ThreadMain, this);
  pthread_attr_destroy(&attributes);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (error != 0) {
    DW_LOG(kError, "cannot start the census thread (error " << error << "); not reporting");
    return false;
  }
  return true;
}

void* Reporter::ThreadMain(void* self) {
  t_state.internal_thread = true;
  pthread_setname_np(pthread_self(), "driftwatch");
  static_cast<Reporter*>(self)->Loop();
  return nullptr;
}

void Reporter::Loop() {
  const uint64_t interval_ns = uint64_t{interval_ms_} * 1000000u;
  uint64_t next = os::MonotonicNs();
  for (;;) {
    next += interval_ns;
    timespec wake{static_cast<time_t>(next / 1000000000u), static_cast<long>(next % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, nullptr) == EINTR) {
    }
    pthread_mutex_lock(&mutex_);
    bool finished = finished_;
    if (!finished) Tick(/*final=*/false);
    pthread_mutex_unlock(&mutex_);
    if (finished) return;
    // After a long stall (suspended process), skip the missed ticks instead of bursting.
    uint64_t now = os::MonotonicNs();
    if (now > next + interval_ns) next = now;
  }
}

void Reporter::Tick(bool final) {
  if (!EnsureConnected()) {
    censuses_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A census still partly unsent means the collector is slow: drop this one rather than queue.
  if (out_.size() > 0 && !Flush(final ? kFinalFlushMs : 0)) return;
  if (out_.size() > 0 && !final) {
    censuses_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  AppendCensus(final);
  Flush(final ? kFinalFlushMs : 0);
}

bool Reporter::EnsureConnected() {
  if (fd_ >= 0) return true;
  uint64_t now = os::MonotonicNs();
  if (now < next_connect_ns_) return false;
  int fd = RawSocketCall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) fd = MoveToHighFd(fd);
  struct stat status;
  if (fd >= 0 && syscall(SYS_fstat, fd, &status) != 0) {
    syscall(SYS_close, fd);
    fd = -1;
  }
  if (fd >= 0) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    static_assert(sizeof(address.sun_path) == sizeof(socket_path_));
    memcpy(address.sun_path, socket_path_, sizeof(address.sun_path));
    if (RawSocketCall(SYS_connect, fd, reinterpret_cast<long>(&address), sizeof(address)) == 0) {
      fd_ = fd;
      socket_device_ = status.st_dev;
      socket_inode_ = status.st_ino;
      connect_backoff_ms_ = 0;
      stalled_id_ = 0;
      stalled_censuses_ = 0;
      sequence_ = 0;
      defined_up_to_ = 1;
      modules_hash_ = 0;
      out_.Clear();
      // A new collector has seen nothing yet. Dropping the pages (rather than zeroing them)
      // gives zeroes back without making every page of the array resident.
      for (uint64_t* last : last_sent_) {
        if (last != nullptr) {
          madvise(last, size_t{sources_.stacks->max_sites()} * 2 * sizeof(uint64_t), MADV_DONTNEED);
        }
      }
      AppendHello();
      return true;
    }
    syscall(SYS_close, fd);
  }
  // Exponential backoff: a missing collector costs a connect attempt every few seconds at most.
  connect_backoff_ms_ = connect_backoff_ms_ == 0 ? interval_ms_ : connect_backoff_ms_ * 2;
  if (connect_backoff_ms_ > kMaxBackoffMs) connect_backoff_ms_ = kMaxBackoffMs;
  next_connect_ns_ = now + uint64_t{connect_backoff_ms_} * 1000000u;
  return false;
}

bool Reporter::StillOurSocket() const {
  return fd_ >= 0 && SameFile(fd_, socket_device_, socket_inode_);
}

void Reporter::Disconnect() {
  // Close the number only if it is still our socket: the target may have closed it (closefrom,
  // close_range) and got the same number back for a file of its own.
  if (StillOurSocket()) syscall(SYS_close, fd_);
  fd_ = -1;
  out_.Clear();
  next_connect_ns_ = os::MonotonicNs() + uint64_t{interval_ms_} * 1000000u;
}

bool Reporter::Flush(int timeout_ms) {
  if (out_.size() > 0 && !StillOurSocket()) {
    DW_LOG(kWarning, "the census socket was closed or replaced by the program; reconnecting");
    fd_ = -1;  // not ours any more: never write to it or close it
    Disconnect();
    return false;
  }
  uint64_t deadline = os::MonotonicNs() + uint64_t(timeout_ms) * 1000000u;
  while (out_.size() > 0) {
    long sent =
        syscall(SYS_sendto, fd_, out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT, nullptr, 0);
    if (sent > 0) {
      out_.Consume(static_cast<size_t>(sent));
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      uint64_t now = os::MonotonicNs();
      if (now >= deadline) return true;  // still connected; the rest goes later
      pollfd wait{fd_, POLLOUT, 0};
      int remaining_ms = static_cast<int>((deadline - now) / 1000000u) + 1;
      syscall(SYS_poll, &wait, 1, remaining_ms);
      continue;
    }
    DW_LOG(kInfo, "collector connection lost (errno " << errno << ")");
    Disconnect();
    return false;
  }
  return true;
}

void Reporter::AppendHello() {
  os::ProcessStat stat;
  os::ReadProcessStat(stat);
  char exe[4096];
  long exe_length = syscall(SYS_readlink, "/proc/self/exe", exe, sizeof(exe));
  if (exe_length < 0) exe_length = 0;
  wire::Hello hello{};
  hello.magic = wire::kHelloMagic;
  hello.protocol_version = wire::kProtocolVersion;
  hello.pid = static_cast<uint32_t>(os::GetPid());
  hello.ppid = static_cast<uint32_t>(stat.ppid);
  hello.start_time_ticks = stat.start_time_ticks;
  hello.clock_ticks_per_second = static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  hello.realtime_ns_at_hello = os::RealtimeNs();
  hello.interval_ms = interval_ms_;
  hello.depth = depth_;
  hello.mode = wire::kModeExact;
  hello.exe_length = static_cast<uint32_t>(exe_length);
  RecordWriter writer(out_);
  writer.Begin(wire::RecordType::kHello);
  writer.Append(&hello, sizeof(hello));
  writer.Append(exe, hello.exe_length);
  writer.End();
}

void Reporter::AppendCensus(bool final) {
  // Reconcile first (e.g. fds opened where no hook could see them), so the counters read below
  // include what reconciliation found.
  for (const CensusSources::Reconcile reconcile : sources_.reconcilers) {
    if (reconcile != nullptr) reconcile();
  }
  const size_t rollback = out_.size();
  RecordWriter writer(out_);
  os::ProcessStat stat;
  os::ReadProcessStat(stat);
  wire::CensusBegin begin{};
  begin.sequence = sequence_;
  begin.realtime_ns = os::RealtimeNs();
  begin.monotonic_ns = os::MonotonicNs();
  begin.rss_bytes = os::ReadRssBytes();
  begin.fd_count = os::CountOpenFds();
  begin.thread_count = stat.threads;
  begin.censuses_dropped = censuses_dropped_.load(std::memory_order_relaxed);
  begin.sites_overflowed = sources_.stacks->overflowed();
  for (const KindSource& kind : sources_.kinds) {
    if (kind.table_overflowed != nullptr) begin.table_overflowed += kind.table_overflowed();
    if (kind.untracked_releases != nullptr) begin.untracked_releases += kind.untracked_releases();
  }
  // Only stacks interned before the maps are read are defined in this census: their modules
  // were mapped when they were captured, so they are in the module list (or among the unloaded
  // ones). A stack interned meanwhile, perhaps in a library dlopen'd meanwhile, waits for the
  // next census and its module list.
  const uint32_t definable = sources_.stacks->end_id();
  bool ok = writer.Add(wire::RecordType::kCensusBegin, &begin, sizeof(begin));
  if (ok) ok = AppendModules(final);
  if (ok) ok = AppendSiteDefinitions(definable);
  if (ok) ok = AppendCounters();
  for (const CensusSources::WriteRecords write : sources_.record_writers) {
    if (ok && write != nullptr) ok = write(writer);
  }
  wire::CensusEnd end{sequence_, final ? wire::kCensusFinal : 0u, 0};
  if (ok) ok = writer.Add(wire::RecordType::kCensusEnd, &end, sizeof(end));
  if (!ok) {
    // Out of memory for the buffer: send nothing rather than half a census. Definitions and
    // counters written into the dropped bytes are sent again on the next connection only, so
    // the connection is reset to keep the collector's view whole.
    out_.set_size(rollback);
    censuses_dropped_.fetch_add(1, std::memory_order_relaxed);
    Disconnect();
    return;
  }
  ++sequence_;
}

bool Reporter::AppendModules(bool final) {
  if (!os::ReadFile("/proc/self/maps", maps_)) return true;  // nothing to say this time
  const char* const end = maps_.data() + maps_.size();
  UnloadedModules* unloaded = sources_.unloaded_modules;
  const uint64_t generation_before = unloaded != nullptr ? unloaded->generation() : 0;
  // Two passes over the same text: hash and count, then (only if it changed) encode.
  uint64_t hash = 0xCBF29CE484222325ull;
  if (unloaded != nullptr && !final) {
    // Unloads recorded before the previous census can no longer concern a stack not yet
    // defined; one census of margin covers stacks captured while that census was being built.
    const uint64_t generation = unloaded->generation();
    unloaded->Prune(generation_before_last_census_);
    generation_before_last_census_ = generation_at_last_census_;
    generation_at_last_census_ = generation;
    const uint64_t version = unloaded->version();
    hash = HashBytes(hash, reinterpret_cast<const char*>(&version), sizeof(version));
  }
  uint32_t count = 0;
  MapsLine line;
  for (CodeMappingWalker walker(maps_.data(), end); walker.Next(line);) {
    hash = HashBytes(hash, line.text, line.text_length);
    ++count;
  }
  if (hash == modules_hash_) return true;

  RecordWriter writer(out_);
  writer.Begin(wire::RecordType::kModuleList);
  // The count is known only at the end (dlclose may record more meanwhile): patched in then.
  const size_t header_at = out_.size();
  wire::ModuleListHeader header{0, 0};
  if (unloaded != nullptr) {
    header.unload_history = static_cast<uint32_t>(unloaded->history_start() & 0xffffu) |
                            static_cast<uint32_t>((generation_before & 0xffffu) << 16);
  }
  writer.Append(&header, sizeof(header));
  build_ids_.Clear();
  uint32_t index = 0;
  uint32_t build_id_count = 0;
  bool build_ids_ok = true;
  auto add = [&](const MapsLine& line, const BuildId& build_id) {
    writer.Append(&line.entry, sizeof(line.entry));
    writer.Append(line.path, line.entry.path_length);
    if (build_id.length > 0) {
      wire::BuildIdEntry entry{index, build_id.length};
      // All or nothing: a BuildIds record whose count disagrees with its entries would be
      // rejected, so a failed append (no memory) drops the record, not the census.
      build_ids_ok = build_ids_ok && build_ids_.Append(&entry, sizeof(entry)) &&
                     build_ids_.Append(build_id.bytes, build_id.length);
      ++build_id_count;
    }
    ++index;
  };
  const os::OwnMemory memory;
  for (CodeMappingWalker walker(maps_.data(), end); index < count && walker.Next(line);) {
    BuildId build_id;
    if (IsCodeImage(line, walker.rest(), end)) {
      ReadBuildId(memory, line.entry.start, line.entry.end, build_id);
    }
    add(line, build_id);
  }
  // A dlclose (and perhaps a dlopen into the same addresses) since the maps were read: the
  // build-ids may belong to other images than the lines say. Sent without them, and again
  // with them next census.
  bool complete = unloaded == nullptr || unloaded->generation() == generation_before;
  if (!complete) build_ids_ok = false;
  if (unloaded != nullptr && !unloaded->ForEach(add, /*try_only=*/final)) complete = false;
  if (!writer.End()) return false;
  header.count = index;
  memcpy(out_.data() + header_at, &header, sizeof(header));

  if (build_id_count > 0 && build_ids_ok) {
    writer.Begin(wire::RecordType::kBuildIds);
    wire::BuildIdsHeader ids_header{build_id_count, 0};
    writer.Append(&ids_header, sizeof(ids_header));
    writer.Append(build_ids_.data(), build_ids_.size());
    if (!writer.End()) return false;
  }
  modules_hash_ = complete ? hash : 0;
  return true;
}

bool Reporter::AppendSiteDefinitions(uint32_t end) {
  const StackTable& stacks = *sources_.stacks;
  RecordWriter writer(out_);
  uint32_t id = defined_up_to_;
  for (; id < end; ++id) {
    // An id handed out but not yet written belongs to an insert in progress: stop there and
    // send it next time, so definitions always precede the counters that name them.
    if (!stacks.Published(id)) {
      if (id != stalled_id_) {
        stalled_id_ = id;
        stalled_censuses_ = 0;
      }
      if (++stalled_censuses_ <= kMaxStalledCensuses) break;
      continue;  // abandoned by a thread that vanished in a fork: never written
    }
    if (stacks.IsDuplicate(id)) continue;
    uint32_t depth = stacks.Depth(id);
    wire::SiteDef def{id, static_cast<uint16_t>(depth), stacks.ModuleGeneration(id)};
    writer.Begin(wire::RecordType::kSiteDef);
    writer.Append(&def, sizeof(def));
    writer.Append(stacks.Frames(id), depth * sizeof(uint64_t));
    if (!writer.End()) return false;
  }
  defined_up_to_ = id;
  return true;
}

bool Reporter::AppendCounters() {
  RecordWriter writer(out_);
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    const KindSource& source = sources_.kinds[kind];
    if (source.counters == nullptr) continue;
    uint64_t* last = last_sent_[kind];
    writer.Begin(wire::RecordType::kCounters);
    wire::CountersHeader header{kind, 0};
    writer.Append(&header, sizeof(header));
    // Site 0 (unattributed) is always eligible; defined sites only once their definition went
    // out, so a collector never sees counters for a stack it cannot resolve.
    for (uint32_t site = 0; site < defined_up_to_; ++site) {
      SiteCounters::Snapshot now = source.counters->Read(site);
      if (now.acquired == last[2 * site] && now.released == last[2 * site + 1]) continue;
      wire::SiteCounter entry{site,
                              source.site_detail ? source.site_detail(site) : 0u,
                              now.acquired,
                              now.released,
                              now.acquired_bytes,
                              now.released_bytes};
      writer.Append(&entry, sizeof(entry));
      // If the census is dropped after all, the connection is reset, and with it this memory.
      last[2 * site] = now.acquired;
      last[2 * site + 1] = now.released;
      ++header.count;
    }
    if (header.count == 0) {
      writer.Abandon();  // nothing changed for this kind
      continue;
    }
    memcpy(out_.data() + out_.size() - writer.payload_size(), &header, sizeof(header));
    if (!writer.End()) return false;
  }
  return true;
}

void Reporter::FinalFlush() {
  pthread_mutex_lock(&mutex_);
  if (!finished_) {
    Tick(/*final=*/true);
    finished_ = true;
  }
  pthread_mutex_unlock(&mutex_);
}

void Reporter::PrepareFork() { pthread_mutex_lock(&mutex_); }

void Reporter::ParentAfterFork() { pthread_mutex_unlock(&mutex_); }

void Reporter::ChildAfterFork() {
  pthread_mutex_init(&mutex_, nullptr);
  // The inherited socket is still connected to the parent's stream: close our copy (if it is
  // still ours) without writing to it.
  if (StillOurSocket()) syscall(SYS_close, fd_);
  fd_ = -1;
  out_.Clear();
  next_connect_ns_ = 0;
  connect_backoff_ms_ = 0;
  censuses_dropped_.store(0, std::memory_order_relaxed);
  // The child's census thread is not started here. Many children exec at once, and some must
  // stay single-threaded until they do (unshare(CLONE_NEWUSER) fails in a multithreaded
  // process). It starts from the first allocation made one interval after the fork.
  if (!finished_) {
    deferred_start_ns_.store(os::MonotonicNs() + uint64_t{interval_ms_} * 1000000u,
                             std::memory_order_relaxed);
  }
}

void Reporter::StartIfDue() {
  uint64_t due = deferred_start_ns_.load(std::memory_order_relaxed);
  if (due == 0 || os::MonotonicNs() < due) return;
  if (deferred_start_ns_.compare_exchange_strong(due, 0, std::memory_order_relaxed)) StartThread();
}

}  // namespace dw
