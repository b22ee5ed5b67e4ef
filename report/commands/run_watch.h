// run_watch.h: keeps track of the processes `driftwatch run` started, to admit their census
// connections whatever uid they switch to and to name those that never sent a census.
//
// `driftwatch run` makes itself a child subreaper, so every process of the run (daemonising
// double-forks included) stays a descendant of it. Scan() walks /proc for those descendants and
// remembers, per pid, its uid, executable, age and whether it carries this run's shim (socket
// variable in its environment or the shim mapped). A peer is admitted when its pid descends from
// driftwatch now, or was seen doing so (it may have exited, and been reaped, before the
// collector accepted it).
//
// Thread-safety: not thread-safe; used by the collecting thread. Allocation: yes (collector
// code). Never runs inside a hook.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "report/model/run_result.h"
#include "report/transport/collector.h"

namespace dw::report {

class RunWatch {
 public:
  // `root`: driftwatch's own pid (the subreaper). A process that carries the shim and lived at
  // least `min_age_s` without connecting is reported as never heard from.
  RunWatch(pid_t root, std::string socket_path, std::string shim_path, double min_age_s);

  // Reads /proc once: notes every descendant of root, refreshes the exe and age of those alive.
  void Scan();
  // The Collector admission check for peers of another uid.
  bool Admits(const PeerInfo& peer) const;
  // An orphan of the run that driftwatch reaped itself: its pid was one of ours.
  void NoteReaped(pid_t pid);

  // The processes of the run without a single admitted connection: those turned away for want
  // of fds, refused ones that were of the run after all, and those that carry the shim and lived
  // long enough to have sent a census but never connected. `heard` holds the pids that sent a
  // Hello.
  std::vector<UnheardProcess> Unheard(const absl::flat_hash_set<pid_t>& heard,
                                      const Collector& collector) const;

 private:
  struct Seen {
    uid_t uid = 0;
    std::string exe;
    uint64_t start_ticks = 0;
    double age_s = 0;      // at the last scan that saw it alive
    bool carries = false;  // the shim was seen in it
  };

  pid_t root_;
  std::string socket_variable_;  // "DRIFTWATCH_SOCKET=<path>"
  std::string shim_path_;
  double min_age_s_;
  absl::flat_hash_map<pid_t, Seen> seen_;
  absl::flat_hash_set<pid_t> reaped_;
};

}  // namespace dw::report
