// reporter.h: the census thread. Every interval it snapshots the trackers into one census
// (preload/wire_format.h) and sends it to the collector's Unix socket.
//
// The target never waits for it: hooks only touch the tables, and all I/O happens here, on a
// socket that is non-blocking, close-on-exec, moved to a high fd number, and written with
// MSG_NOSIGNAL (a vanished collector must not kill the target with SIGPIPE). When the collector
// is absent or slow, a census is dropped and counted, and connection attempts back off.
//
// Thread-safety: Start/FinalFlush/fork handlers may run on any thread; they serialise on a mutex
// that hooks never take. Allocation: none from the target's heap (buffers are mmap'd); starting
// the thread makes glibc allocate its bookkeeping, with the hook guard held.
// Safe inside a hook: no.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "preload/os.h"
#include "preload/wire_format.h"

namespace dw {

class StackTable;
class SiteCounters;
class UnloadedModules;

class RecordWriter;

// What a census reads about one resource kind. A kind whose counters are null is not tracked.
struct KindSource {
  const SiteCounters* counters = nullptr;
  uint32_t (*site_detail)(uint32_t site) = nullptr;  // the wire's SiteCounter.detail
  uint64_t (*table_overflowed)() = nullptr;
  uint64_t (*untracked_releases)() = nullptr;
};

// What a census reads.
struct CensusSources {
  const StackTable* stacks = nullptr;
  UnloadedModules* unloaded_modules = nullptr;  // code modules dlclose() removed, if tracked
  KindSource kinds[wire::kKindCount];
  // Run on the census thread before the counters are read, e.g. to reconcile a tracker with
  // /proc (fds opened where no hook could see them).
  using Reconcile = void (*)();
  Reconcile reconcilers[4] = {};
  // Append extra records to a census, after the counters (e.g. Limits, ThreadStates). A false
  // return means the buffer could not grow: the census is dropped.
  using WriteRecords = bool (*)(RecordWriter& writer);
  WriteRecords record_writers[4] = {};
};

class Reporter {
 public:
  // Starts the census thread. False if it could not be started (the shim then stays passive).
  bool Start(const char* socket_path, uint32_t interval_ms, uint16_t depth,
             const CensusSources& sources);

  // Sends a last census marked final, waiting at most about a second for the collector to take
  // it. Called once, from the exit path; later censuses are not sent.
  void FinalFlush();

  // pthread_atfork handlers. The child forgets the parent's connection and later starts its own
  // census thread, so each process reports under its own identity.
  void PrepareFork();
  void ParentAfterFork();
  void ChildAfterFork();

  // A fork child's census thread starts late (see ChildAfterFork). Hooks call StartIfDue() when
  // start_pending() says so; it starts the thread once the delay has passed.
  bool start_pending() const { return deferred_start_ns_.load(std::memory_order_relaxed) != 0; }
  void StartIfDue();

  // The census socket's fd number, or -1. Census thread only (e.g. fd reconciliation skips it).
  int census_socket_fd() const { return fd_; }

  uint64_t censuses_dropped() const { return censuses_dropped_.load(std::memory_order_relaxed); }

 private:
  static void* ThreadMain(void* self);
  bool StartThread();
  void Loop();
  void Tick(bool final);

  bool EnsureConnected();
  void Disconnect();
  // True if fd_ still refers to the socket we connected (same device and inode).
  bool StillOurSocket() const;
  void AppendHello();
  void AppendCensus(bool final);
  // `final`: the exit path, which may interrupt a dlclose on this very thread (a signal handler
  // calling exit): it must not wait for the unloaded-module records.
  bool AppendModules(bool final);
  // Defines the stacks with ids below `end` not yet defined on this connection.
  bool AppendSiteDefinitions(uint32_t end);
  bool AppendCounters();
  // Writes as much pending output as the socket takes, waiting up to `timeout_ms` for room.
  // False if the connection broke.
  bool Flush(int timeout_ms);

  // Configuration.
  char socket_path_[108] = {};
  uint32_t interval_ms_ = 1000;
  uint16_t depth_ = 0;
  CensusSources sources_;

  // Census-thread state, guarded by mutex_.
  pthread_mutex_t mutex_ = PTHREAD_MUTEX_INITIALIZER;
  int fd_ = -1;
  dev_t socket_device_ = 0;
  ino_t socket_inode_ = 0;
  uint32_t stalled_id_ = 0;  // the unwritten site id that blocked the last definitions
  int stalled_censuses_ = 0;
  uint64_t sequence_ = 0;
  uint32_t defined_up_to_ = 1;  // site ids below this are defined on this connection
  uint64_t modules_hash_ = 0;   // hash of the last ModuleList sent on this connection
  // UnloadedModules::generation() at the last two censuses, to prune what they made stale.
  uint64_t generation_at_last_census_ = 0;
  uint64_t generation_before_last_census_ = 0;
  uint64_t next_connect_ns_ = 0;
  uint32_t connect_backoff_ms_ = 0;
  bool finished_ = false;     // the final census went out (or exit began): send nothing more
  os::PageBuffer out_;        // bytes not yet accepted by the socket
  os::PageBuffer maps_;       // scratch: /proc/self/maps
  os::PageBuffer build_ids_;  // scratch: the BuildIds entries of the ModuleList being written
  // Per kind, per site: the acquired/released values last sent on this connection.
  uint64_t* last_sent_[wire::kKindCount] = {};

  std::atomic<uint64_t> deferred_start_ns_{0};  // 0: no deferred start pending
  std::atomic<uint64_t> censuses_dropped_{0};
};

}  // namespace dw
