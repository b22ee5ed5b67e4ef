// collect_command.h: `driftwatch collect` as a library: the long-running collector of a staging
// canary. It listens on a socket for any number of processes started under the shim
// (`driftwatch env` prints their environment), analyses each live process every few seconds with
// the analysis of `driftwatch run` (BuildProcessReports), and logs one line when a process
// connects, when one of its sites starts or stops drifting (kind, headline frame, slope) and when
// it ends (its verdict). With `metrics`, it serves Prometheus metrics of the live processes and
// of itself (metrics_exporter.h). Each process lifetime is a series of its own, labelled by its
// command name, pid and start time (analysis/live_processes.h); when it ends its series are freed
// and a summary of its verdict is kept among the last `keep_ended`.
//
// Signals: SIGHUP reopens the log file (logrotate); SIGTERM and SIGINT end the collection with a
// final line per live process, and RunCollector returns OK.
//
// Who may connect: processes of the collector's own uid and root, plus the uids allowed
// explicitly (docs/SECURITY.md); the socket file is mode 0600 unless others are allowed (0666;
// the credentials check on accept is the access control).
//
// Thread-safety: blocks SIGHUP, SIGINT and SIGTERM in the calling thread while it runs (they are
// read from a signalfd); call it from one thread, in a process without other threads that expect
// those signals. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "report/analysis/live_processes.h"
#include "report/analysis/process_analysis.h"
#include "report/commands/http_server.h"
#include "report/commands/proc_watch.h"
#include "report/outputs/prometheus_exposition.h"
#include "report/commands/state_recorder.h"

namespace dw::report {

struct CollectOptions : AnalysisOptions {
  std::string socket_path;              // empty: no socket, only processes watched through /proc
  ProcWatchOptions watch;               // --pid, --match (commands/proc_watch.h)
  double check_every_s = 5.0;           // how often live processes are analysed
  std::optional<std::string> log_path;  // unset: stderr
  size_t keep_ended = EndedProcesses::kDefaultCapacity;
  std::vector<uid_t> allowed_uids;  // besides ours and root
  bool allow_any_uid = false;
  // --metrics: Prometheus metrics at http://HOST:PORT/metrics (metrics_exporter.h).
  std::optional<ListenAddress> metrics;
  PrometheusOptions prometheus;
  std::string version;  // of driftwatch, for driftwatch_build_info
  StateOptions state;  // --state: rolling recordings per process; off while state.dir is empty
};

// Collects until SIGTERM or SIGINT. Errors: the socket or the log file cannot be opened, the
// metrics address cannot be listened on.
absl::Status RunCollector(const CollectOptions& options);

// Who may connect to a collector started by `our_uid` with `options`.
bool CollectorAdmits(uid_t peer_uid, uid_t our_uid, const CollectOptions& options);

}  // namespace dw::report
