// census_encoder.h: turns the trackers' state into census bytes (preload/wire_format.h).
//
// Pure encoding: it reads the tables and /proc and appends records to a buffer; it never
// touches a socket. The connection (census_connection.h) sends the bytes and the lifecycle
// (reporter.h) decides when. A collector that connects anew has seen nothing, so everything the
// encoder remembers (which stacks are defined, what was last sent) is per connection and
// forgotten by NewConnection().
//
// Thread-safety: one thread at a time (the census thread, or the exiting thread when no census
// thread runs). Allocation: none from the target's heap (mmap'd buffers). Safe inside a hook: no.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "preload/lazy_array.h"
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
  // Sampled mode's mean bytes between heap samples (the Hello says so); 0 in exact mode.
  uint32_t heap_sample_mean_bytes = 0;
  // Run before the counters are read, e.g. to reconcile a tracker with /proc (fds opened where
  // no hook could see them).
  using Reconcile = void (*)();
  Reconcile reconcilers[4] = {};
  // Append extra records to a census, after the counters (e.g. Limits, ThreadStates). A false
  // return means the buffer could not grow: the census is dropped.
  using WriteRecords = bool (*)(RecordWriter& writer);
  WriteRecords record_writers[4] = {};
};

class CensusEncoder {
 public:
  // Maps the per-site memory. False if it cannot be mapped (nothing may be sent then).
  bool Init(const CensusSources& sources, uint32_t interval_ms, uint16_t depth);

  // Unmaps the per-site memory (after a failed start).
  void ReleaseMemory() {
    defined_.Release();
    for (auto& last_sent : last_sent_) last_sent.Release();
  }

  // Forgets what the previous collector was sent: the next census defines every stack again.
  void NewConnection();
  // A fork child: the parent's buffers may have been caught mid-change; drop them unread.
  void ForgetAfterFork();

  // Appends the Hello and the Image that open a connection.
  bool AppendHello(os::PageBuffer& out);
  // Appends one whole census, or nothing (then false: the buffer could not grow, and the
  // connection must be reset, since what it recorded as sent was not).
  // `final`: the exit path, which must not wait for the unloaded-module records.
  bool AppendCensus(os::PageBuffer& out, bool final, uint64_t censuses_dropped);

 private:
  bool AppendModules(os::PageBuffer& out, bool final);
  // Defines every published stack below `end` not yet defined on this connection. A stack still
  // being written (its thread stopped mid-insert: a debugger, a long signal handler, a fork)
  // stays pending and is defined by a later census; its counters wait for it.
  bool AppendSiteDefinitions(os::PageBuffer& out, uint32_t end);
  bool AppendCounters(os::PageBuffer& out);
  bool AppendKindCounters(os::PageBuffer& out, uint32_t kind);

  bool Defined(uint32_t site) const {
    const uint64_t* word = defined_.Get(site / 64);
    return word != nullptr && ((*word >> (site % 64)) & 1u) != 0;
  }
  // False if the bit's memory could not be mapped (the site then stays undefined).
  bool MarkDefined(uint32_t site) {
    uint64_t* word = defined_.Ensure(site / 64);
    if (word != nullptr) *word |= uint64_t{1} << (site % 64);
    return word != nullptr;
  }

  CensusSources sources_;
  uint32_t interval_ms_ = 1000;
  uint16_t depth_ = 0;
  uint32_t max_sites_ = 0;

  // Per image: a new nonce at Init and in a fork child; connections made so far.
  uint64_t image_nonce_ = 0;
  uint32_t connections_made_ = 0;

  // Per connection.
  uint64_t sequence_ = 0;
  // Per-site memory is mapped as site ids reach it (lazy_array.h), so a process with few stacks
  // reserves little of the address space `ulimit -v` counts.
  LazyArray<uint64_t, 9> defined_;  // bit per site: its SiteDef went out (or it is a duplicate)
  uint32_t first_undefined_ = 1;    // every site below this is defined
  uint32_t scanned_up_to_ = 1;      // sites at or above this were never looked at
  bool read_every_site_ = true;     // the connection's first census: every site, not the changed
  uint64_t modules_hash_ = 0;       // hash of the last ModuleList sent
  // Per kind, per site: the acquired/released values last sent.
  struct LastSent {
    uint64_t acquired;
    uint64_t released;
  };
  LazyArray<LastSent, 12> last_sent_[wire::kKindCount];

  // Per process. UnloadedModules::generation() at the last two censuses, to prune what they
  // made stale.
  uint64_t generation_at_last_census_ = 0;
  uint64_t generation_before_last_census_ = 0;

  os::PageBuffer maps_;       // scratch: /proc/self/maps
  os::PageBuffer build_ids_;  // scratch: the BuildIds entries of the ModuleList being written
};

}  // namespace dw
