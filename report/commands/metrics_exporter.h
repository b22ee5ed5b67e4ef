// metrics_exporter.h: `driftwatch collect --metrics HOST:PORT`: the collector's Prometheus
// endpoint. The collecting loop hands it each analysis of a live process (Update), each process
// that ended (Forget, CountEnded) and its own figures (Publish); it keeps each live process's
// rendered samples (outputs/prometheus_exposition.h) and publishes the whole exposition as one
// immutable text, which the HTTP server's threads serve at /metrics. A scrape never waits for an
// analysis and never sees half of one; an analysis never waits for a scrape.
//
// Counters over the collector's life (censuses received and dropped, ended processes) add what
// an ended process had at its end to what ended before, so they never go backwards when its
// series leave the exposition.
//
// Thread-safety: Update, Forget, CountEnded and Publish from the collecting thread only; the
// server's threads read the published text. Allocation: yes (collector code). Never runs inside
// a hook.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "report/analysis/live_processes.h"
#include "report/commands/http_server.h"
#include "report/model/run_result.h"
#include "report/outputs/prometheus_exposition.h"
#include "report/transport/collector.h"

namespace dw::report {

class MetricsExporter {
 public:
  // Serves /metrics on `address` from now on (an exposition with the health figures only until
  // the first Publish). Errors: see HttpServer::Start.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(const ListenAddress& address,
                                                                const PrometheusOptions& options,
                                                                std::string version);

  int port() const { return server_->port(); }

  // The latest analysis of live connection `id`: its samples replace the previous ones.
  void Update(uint32_t id, const ProcessLabel& label, const ProcessReport& report, Verdict verdict);
  // Connection `id` ended with `record` (before its final analysis): its series leave, its
  // censuses, drops and stream error are added to the collector's totals.
  void Forget(uint32_t id, const ConnectionRecord& record);
  // Connection `to` carries on the series of connection `from`, an earlier one of its process
  // image (ConnectionRecord::continues): `from` will never be forgotten, its samples move.
  void Continue(uint32_t from, uint32_t to);
  // The same for a process watched through /proc (--pid, --match: no connection, totals and no
  // sites), by pid; rendered after the connections.
  void UpdateWatched(uint32_t pid, const ProcessLabel& label, const ProcessReport& report,
                     Verdict verdict);
  void ForgetWatched(uint32_t pid);
  // An ended process's final verdict, for driftwatch_ended_processes_total.
  void CountEnded(Verdict verdict);

  // Renders and publishes the exposition. `health` carries what the loop knows (connected,
  // refused, turned away, analyses); the totals kept here are filled in.
  void Publish(CollectorHealth health);

  // The text served now (tests, and the size in the log).
  std::shared_ptr<const std::string> Latest() const { return text_->Latest(); }

 private:
  struct Live {
    ProcessSamples samples;
    uint64_t censuses = 0;
    uint64_t dropped = 0;
    uint64_t gaps = 0;
  };

  MetricsExporter(const PrometheusOptions& options, std::string version)
      : options_(options), version_(std::move(version)) {}

  PrometheusOptions options_;
  std::string version_;
  double started_unix_s_ = 0;
  // Connections by id; processes watched through /proc by kWatched | pid.
  static constexpr uint64_t kWatched = uint64_t{1} << 32;
  absl::flat_hash_map<uint64_t, Live> live_;
  CollectorHealth ended_;  // totals of the processes that ended
  // Shared with the server's handler, so that it needs no order of destruction.
  std::shared_ptr<PublishedText> text_ = std::make_shared<PublishedText>();
  std::unique_ptr<HttpServer> server_;
};

}  // namespace dw::report
