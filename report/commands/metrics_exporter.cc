#include "report/commands/metrics_exporter.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

namespace dw::report {
namespace {

// The exposition format's media type (text format 0.0.4).
constexpr char kExpositionType[] = "text/plain; version=0.0.4; charset=utf-8";

double NowUnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const ListenAddress& address, const PrometheusOptions& options, std::string version) {
  std::unique_ptr<MetricsExporter> exporter(new MetricsExporter(options, std::move(version)));
  exporter->started_unix_s_ = NowUnixSeconds();
  exporter->Publish({});
  std::map<std::string, HttpServer::Handler> routes;
  routes["/metrics"] = [text = exporter->text_] {
    return HttpResponse{.content_type = kExpositionType, .body = text->Latest()};
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(address, std::move(routes));
  if (!server.ok()) return server.status();
  exporter->server_ = std::move(*server);
  return exporter;
}

void MetricsExporter::Update(uint32_t id, const ProcessLabel& label, const ProcessReport& report,
                             Verdict verdict) {
  Live& live = live_[id];
  live.samples = SampleProcess(label, report, verdict, options_);
  live.censuses = report.census_count;
  live.dropped = report.totals.censuses_dropped;
  live.gaps = report.sequence_gaps;
}

void MetricsExporter::Forget(uint32_t id, const ConnectionRecord& record) {
  live_.erase(id);
  ended_.censuses_received += record.census_count;
  if (record.latest.has_value()) ended_.censuses_dropped += record.latest->totals.censuses_dropped;
  ended_.sequence_gaps += record.sequence_gaps;
  if (!record.stream_error.empty()) ++ended_.stream_errors;
}

void MetricsExporter::Continue(uint32_t from, uint32_t to) {
  auto earlier = live_.find(from);
  if (earlier == live_.end()) return;
  Live carried = std::move(earlier->second);
  live_.erase(earlier);
  live_[to] = std::move(carried);
}

void MetricsExporter::UpdateWatched(uint32_t pid, const ProcessLabel& label,
                                    const ProcessReport& report, Verdict verdict) {
  live_[kWatched | pid].samples = SampleProcess(label, report, verdict, options_);
}

void MetricsExporter::ForgetWatched(uint32_t pid) { live_.erase(kWatched | pid); }

void MetricsExporter::CountEnded(Verdict verdict) { ++ended_.ended[static_cast<size_t>(verdict)]; }

void MetricsExporter::Publish(CollectorHealth health) {
  health.version = version_;
  health.started_unix_s = started_unix_s_;
  health.ended = ended_.ended;
  health.censuses_received = ended_.censuses_received;
  health.censuses_dropped = ended_.censuses_dropped;
  health.sequence_gaps = ended_.sequence_gaps;
  health.stream_errors = ended_.stream_errors;
  // Connection order (then watched pids), so that /metrics lists processes as the log does.
  std::vector<std::pair<uint64_t, const Live*>> order;
  order.reserve(live_.size());
  for (const auto& [id, live] : live_) {
    order.emplace_back(id, &live);
    health.censuses_received += live.censuses;
    health.censuses_dropped += live.dropped;
    health.sequence_gaps += live.gaps;
  }
  std::sort(order.begin(), order.end());
  std::vector<const ProcessSamples*> processes;
  processes.reserve(order.size());
  for (const auto& [id, live] : order) processes.push_back(&live->samples);
  text_->Publish(RenderExposition(processes, health));
}

}  // namespace dw::report
