// live_processes.h: what `driftwatch collect` keeps about each process lifetime: its label (the
// name users know it by, its executable and start time), which of its sites drift now and which
// started or stopped drifting since the last analysis, and, once it has ended, a short summary of
// its verdict in a history of bounded length.
//
// Each connection is one process image, so each lifetime (and each restart of a service) is a
// series of its own; the summaries of ended ones outlive their series, which are freed.
//
// Thread-safety: plain data and stateless functions; an EndedProcesses is used by one thread.
// Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "preload/wire_format.h"
#include "report/decode/census.h"
#include "report/model/run_result.h"
#include "report/transport/peer.h"

namespace dw::report {

// Who a series belongs to. pid and start time identify the lifetime; `name` is what users call
// the process: /proc/PID/comm at connect (argv[0]'s basename when comm is its truncation to 15
// bytes), else the executable's basename. A symlinked binary (redis-server, whose exe is
// /usr/bin/redis-check-rdb) keeps its own name.
struct ProcessLabel {
  std::string name;
  std::string exe;  // from the Hello: /proc/self/exe, the symlink's target
  uint32_t pid = 0;
  uint64_t start_time_ticks = 0;
  double started_unix_s = 0;  // 0 when the boot time is unknown

  std::string Describe() const;  // "name[pid]"
};

ProcessLabel LabelProcess(const HelloInfo& hello, const std::optional<ProcessNames>& names);

// A site (an allocation-site group, analysis/site_groups.h) that drifts, by its headline frame.
struct DriftingSite {
  wire::Kind kind = wire::Kind::kHeap;
  std::string where;  // the headline frame: "function (file:line)", or module+offset
  double slope_per_hour = 0;
  std::string unit;  // of the slope: "bytes" or "count"

  // The same site: kind and headline (the slope changes from one analysis to the next).
  bool SameSite(const DriftingSite& other) const {
    return kind == other.kind && where == other.where;
  }
};

// The drifting groups of an analysed process, fastest first within each kind, kinds in order.
std::vector<DriftingSite> DriftingSites(const ProcessReport& process);

struct DriftChanges {
  std::vector<DriftingSite> started;  // drifting now, not before (with today's slope)
  std::vector<DriftingSite> stopped;  // drifting before, not now (with the last slope seen)
};

// Which sites of one process drift, from one analysis to the next. A site starts drifting once
// kStartAfter analyses in a row find it drifting, and stops only after kStopAfter analyses in a
// row that do not, so that a trend at the edge of significance (or sampled-mode noise early in a
// life) does not make a start and a stop line every few seconds.
class DriftTracker {
 public:
  static constexpr int kStartAfter = 2;
  static constexpr int kStopAfter = 3;

  // The sites drifting in the latest analysis (DriftingSites); returns what started or stopped.
  DriftChanges Update(const std::vector<DriftingSite>& now);
  // Drifting as far as the log has said: started and not yet stopped.
  std::vector<DriftingSite> drifting() const;

 private:
  struct Tracked {
    DriftingSite site;     // with the latest slope while it drifts
    int hits = 0;          // analyses in a row that found it drifting
    int misses = 0;        // analyses in a row that did not
    bool started = false;  // its start was said
  };
  std::vector<Tracked> tracked_;
};

// What is kept of a process once it ended.
struct ProcessSummary {
  ProcessLabel label;
  Verdict verdict = Verdict::kInconclusive;
  size_t census_count = 0;
  double ended_unix_s = 0;
  // Its drifting sites at the end, at most kSummarySites of them (the summary stays small).
  static constexpr size_t kSummarySites = 5;
  std::vector<DriftingSite> drifting;
  std::string stream_error;  // a corrupt or truncated stream
};

// `verdict`: ComputeVerdict (process_analysis.h) over this process alone.
ProcessSummary SummarizeProcess(const ProcessLabel& label, const ProcessReport& process,
                                Verdict verdict, double ended_unix_s);

// The last `capacity` ended processes, oldest first; older ones are dropped (and counted).
class EndedProcesses {
 public:
  static constexpr size_t kDefaultCapacity = 1000;
  explicit EndedProcesses(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  void Add(ProcessSummary summary);
  const std::deque<ProcessSummary>& entries() const { return entries_; }
  size_t capacity() const { return capacity_; }
  uint64_t dropped() const { return dropped_; }

 private:
  size_t capacity_;
  uint64_t dropped_ = 0;
  std::deque<ProcessSummary> entries_;
};

}  // namespace dw::report
