#include "report/commands/collect_command.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "report/commands/metrics_exporter.h"
#include "report/outputs/report_output.h"
#include "report/symbols/symbolizer.h"
#include "report/transport/collector.h"

namespace dw::report {
namespace {

using Clock = std::chrono::steady_clock;

std::string DescribeSite(const DriftingSite& site) {
  return fmt::format("{} at {}: {}", KindName(site.kind), site.where,
                     FormatSlope(site.slope_per_hour, site.unit));
}

// The log: stderr, or a file opened for appending and reopened on SIGHUP (after logrotate moved
// it). Each line starts with the time in UTC and is flushed at once, so `tail -f` and a crash
// lose nothing.
class LogSink {
 public:
  explicit LogSink(std::optional<std::string> path) : path_(std::move(path)) {}
  ~LogSink() {
    if (file_ != nullptr && file_ != stderr) std::fclose(file_);
  }
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  absl::Status Open() {
    if (!path_.has_value()) {
      file_ = stderr;
      return absl::OkStatus();
    }
    std::FILE* file = std::fopen(path_->c_str(), "ae");
    if (file == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("cannot open the log {}: {}", *path_, std::strerror(errno)));
    }
    if (file_ != nullptr && file_ != stderr) std::fclose(file_);
    file_ = file;
    return absl::OkStatus();
  }

  // On failure the old file is kept (better a rotated file than no log) and stderr says why.
  void Reopen() {
    if (!path_.has_value()) return;
    if (absl::Status status = Open(); !status.ok()) {
      fmt::print(stderr, "driftwatch: error: {}\n", std::string(status.message()));
      return;
    }
    Line("log reopened");
  }

  template <typename... Args>
  void Line(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(file_, "{} {}\n", FormatUtc(NowUnixSeconds()),
               fmt::format(format, std::forward<Args>(args)...));
    std::fflush(file_);
  }

 private:
  std::optional<std::string> path_;
  std::FILE* file_ = nullptr;
};

// One live process image (one connection) and what was last said about it.
struct Watched {
  ProcessLabel label;
  size_t censuses_analysed = 0;
  DriftTracker drifting;
};

// Images the collector keeps open for all processes (SymbolizerOptions::max_images): libc,
// the dynamic loader and the programs and libraries that are running, with room to spare; a
// program that ran once is closed when others need the room.
constexpr size_t kOpenImages = 64;

class CollectLoop {
 public:
  CollectLoop(const CollectOptions& options, Collector& collector, LogSink& log, int signal_fd,
              MetricsExporter* metrics)
      : options_(options),
        collector_(collector),
        log_(log),
        signal_fd_(signal_fd),
        metrics_(metrics),
        analyzer_({.warmup_s = options.warmup_s}),
        symbolizer_({.debug_dirs = options.debug_dirs, .max_images = kOpenImages}),
        ended_(options.keep_ended),
        watcher_(options.watch, options.analyzer != nullptr ? *options.analyzer : analyzer_,
                 options.budgets, ended_,
                 [this](const std::string& line) { log_.Line("{}", line); }) {
    watcher_.set_metrics(metrics);
    watcher_.set_under_shim([this](uint32_t pid, uint64_t start_ticks) {
      return std::any_of(live_.begin(), live_.end(), [&](const auto& entry) {
        return entry.second.label.pid == pid && entry.second.label.start_time_ticks == start_ticks;
      });
    });
  }

  // --state: the recorder (the collector's tap) to drive; null for none.
  void set_state(StateRecorder* state) { state_ = state; }

  absl::Status Run() {
    if (absl::Status status = watcher_.Open(); !status.ok()) return status;
    auto next_check = Clock::now() + CheckPeriod();
    // Without a socket and without --match, the collection ends with the last --pid.
    const bool watch_only = options_.socket_path.empty() && options_.watch.match_names.empty();
    while (!stopping_ && !(watch_only && watcher_.done())) {
      const auto now = Clock::now();
      const auto wake = std::min(next_check, watcher_.Tick(now));
      const int timeout = static_cast<int>(std::clamp<int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1, 0, 1000));
      pollfd extra[1] = {{.fd = signal_fd_, .events = POLLIN, .revents = 0}};
      absl::StatusOr<bool> activity = collector_.PollOnce(timeout, extra);
      if (!activity.ok()) return activity.status();
      if ((extra[0].revents & POLLIN) != 0) ReadSignals();
      if (state_ != nullptr) state_->Tick();
      AnnounceNew();
      EndFinished();
      SayRefused();
      if (Clock::now() >= next_check) {
        CheckLive();
        next_check = Clock::now() + CheckPeriod();
      }
      metrics_changed_ |= watcher_.TakeMetricsChanged();
      PublishMetrics();
    }
    Stop();
    return absl::OkStatus();
  }

 private:
  Clock::duration CheckPeriod() const {
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options_.check_every_s));
  }

  void ReadSignals() {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      if (info.ssi_signo == SIGHUP) {
        log_.Reopen();
        if (state_ != nullptr) state_->RollAll();
      } else {
        stopping_ = true;
      }
    }
  }

  // A connection is announced once its Hello has said who it is.
  void AnnounceNew() {
    for (uint32_t id : collector_.OpenIds()) {
      if (live_.contains(id)) continue;
      const ConnectionRecord* record = collector_.Peek(id);
      if (record == nullptr || !record->hello.has_value()) continue;
      if (Carry(id, *record) == nullptr) Announce(id, *record);
    }
  }

  // A connection that continues an earlier one of its image (its census thread stepped aside:
  // unshare, setns, capset) takes over what was said about it, so nothing is announced again.
  Watched* Carry(uint32_t id, const ConnectionRecord& record) {
    if (!record.continues.has_value()) return nullptr;
    auto earlier = live_.find(*record.continues);
    if (earlier == live_.end()) return nullptr;
    Watched carried = std::move(earlier->second);
    live_.erase(earlier);
    Watched& watched = live_[id] = std::move(carried);
    if (metrics_ != nullptr) metrics_->Continue(*record.continues, id);
    return &watched;
  }

  Watched& Announce(uint32_t id, const ConnectionRecord& record) {
    Watched& watched = live_[id];
    watched.label = LabelProcess(*record.hello, record.names);
    const std::string mode =
        record.hello->mode == wire::kModeSampled
            ? fmt::format("sampled/{}", FormatBytes(record.hello->sample_mean_bytes))
            : std::string("exact");
    log_.Line("connect {} exe={} started={} uid={} mode={}", watched.label.Describe(),
              watched.label.exe, FormatUtc(watched.label.started_unix_s),
              record.peer.has_value() ? static_cast<int64_t>(record.peer->uid) : -1, mode);
    metrics_changed_ = true;
    watcher_.HandOver(watched.label.pid, watched.label.start_time_ticks);  // counted once
    return watched;
  }

  // The final analysis of every connection that ended; its series are freed here, a summary
  // is kept.
  void EndFinished() {
    for (Collector::Ended& ended : collector_.TakeEnded()) {
      if (!live_.contains(ended.id)) Carry(ended.id, ended.record);  // before its samples go
      if (metrics_ != nullptr) {
        metrics_->Forget(ended.id, ended.record);
        metrics_changed_ = true;
      }
      if (!ended.record.hello.has_value()) {
        live_.erase(ended.id);  // not a driftwatch process, or it failed at once
        continue;
      }
      auto it = live_.find(ended.id);
      Watched& watched = it != live_.end() ? it->second : Announce(ended.id, ended.record);
      ProcessSummary summary = Conclude(watched, std::move(ended.record));
      log_.Line(
          "end {} after {}, {} censuses: {}{}", summary.label.Describe(),
          FormatLifetime(summary.label.started_unix_s, summary.ended_unix_s), summary.census_count,
          DescribeVerdict(summary),
          summary.stream_error.empty() ? "" : fmt::format(" (stream: {})", summary.stream_error));
      if (metrics_ != nullptr) metrics_->CountEnded(summary.verdict);
      ended_.Add(std::move(summary));
      live_.erase(ended.id);
    }
  }

  std::string DescribeVerdict(const ProcessSummary& summary) const {
    std::vector<std::string> sites;
    for (const DriftingSite& site : summary.drifting) sites.push_back(DescribeSite(site));
    return sites.empty() ? fmt::format("verdict {}", VerdictName(summary.verdict))
                         : fmt::format("verdict {} ({})", VerdictName(summary.verdict),
                                       absl::StrJoin(sites, "; "));
  }

  void SayRefused() {
    const auto& refused = collector_.refused();
    for (; refused_said_ < refused.size(); ++refused_said_) {
      const PeerInfo& peer = refused[refused_said_];
      log_.Line("refused pid {} uid {} exe={}: not an allowed user (see --allow-user)", peer.pid,
                peer.uid, peer.exe);
      metrics_changed_ = true;
    }
  }

  std::vector<ProcessReport> Analyse(ConnectionRecord record) {
    // A process in a container maps files of its own filesystem, which the collector (on the
    // host, or in a sidecar sharing the pid namespace) reaches through /proc/PID/root while the
    // process lives. Images opened then stay open for its final analysis.
    std::vector<std::string> roots;
    if (record.peer.has_value() && record.peer->pid > 0) {
      roots.push_back(fmt::format("/proc/{}/root", record.peer->pid));
    }
    symbolizer_.set_roots(std::move(roots));
    std::vector<ConnectionRecord> records;
    records.push_back(std::move(record));
    const DriftAnalyzer& analyzer = options_.analyzer != nullptr ? *options_.analyzer : analyzer_;
    return BuildProcessReports(std::move(records), analyzer, symbolizer_, options_.budgets);
  }

  // Logs the sites that started or stopped drifting since the last analysis.
  void Compare(Watched& watched, const ProcessReport& report) {
    const DriftChanges changes = watched.drifting.Update(DriftingSites(report));
    for (const DriftingSite& site : changes.started) {
      log_.Line("drift-start {} {}", watched.label.Describe(), DescribeSite(site));
    }
    for (const DriftingSite& site : changes.stopped) {
      log_.Line("drift-stop {} {} (was {})", watched.label.Describe(),
                fmt::format("{} at {}", KindName(site.kind), site.where),
                FormatSlope(site.slope_per_hour, site.unit));
    }
  }

  ProcessSummary Conclude(Watched& watched, ConnectionRecord record) {
    std::vector<ProcessReport> reports = Analyse(std::move(record));
    // The end line says the final verdict and what drifts: no start or stop line for it.
    if (reports.empty()) {
      return SummarizeProcess(watched.label, ProcessReport(), Verdict::kInconclusive,
                              NowUnixSeconds());
    }
    return SummarizeProcess(watched.label, reports.front(), ComputeVerdict(reports),
                            NowUnixSeconds());
  }

  // Every live process with censuses it was not judged on yet.
  void CheckLive() {
    watcher_.Check();
    const auto start = Clock::now();
    for (auto& [id, watched] : live_) {
      const ConnectionRecord* record = collector_.Peek(id);
      if (record == nullptr || record->census_count == watched.censuses_analysed) continue;
      watched.censuses_analysed = record->census_count;
      std::optional<ConnectionRecord> snapshot = collector_.Snapshot(id);
      if (!snapshot.has_value()) continue;
      std::vector<ProcessReport> reports = Analyse(std::move(*snapshot));
      if (reports.empty()) continue;
      Compare(watched, reports.front());
      if (metrics_ != nullptr) {
        metrics_->Update(id, watched.label, reports.front(), ComputeVerdict(reports));
      }
    }
    ++analyses_;
    last_analysis_s_ = std::chrono::duration<double>(Clock::now() - start).count();
    last_analysis_unix_s_ = NowUnixSeconds();
    metrics_changed_ = true;
  }

  // After an analysis at once; after ends and refusals at most once a second (a churn of
  // short-lived processes must not render the exposition at every poll).
  void PublishMetrics() {
    if (metrics_ == nullptr || !metrics_changed_) return;
    const bool analysed = analyses_ != analyses_published_;
    if (!analysed && Clock::now() - published_at_ < std::chrono::seconds(1)) return;
    CollectorHealth health;
    health.connected = live_.size();
    health.refused = collector_.refused().size();
    health.turned_away = collector_.turned_away_connections();
    health.analyses = analyses_;
    health.last_analysis_seconds = last_analysis_s_;
    health.last_analysis_unix_s = last_analysis_unix_s_;
    metrics_->Publish(std::move(health));
    metrics_changed_ = false;
    analyses_published_ = analyses_;
    published_at_ = Clock::now();
  }

  // SIGTERM or SIGINT: what ended is concluded as usual, then a last line per live process.
  void Stop() {
    EndFinished();
    const std::vector<uint32_t> ids = collector_.OpenIds();
    std::vector<ConnectionRecord> records = collector_.Finish();
    for (size_t i = 0; i < records.size() && i < ids.size(); ++i) {
      if (!records[i].hello.has_value()) continue;
      auto it = live_.find(ids[i]);
      Watched& watched = it != live_.end() ? it->second : Announce(ids[i], records[i]);
      const ProcessSummary summary = Conclude(watched, std::move(records[i]));
      log_.Line("running {} at exit, after {}, {} censuses: {}", summary.label.Describe(),
                FormatLifetime(summary.label.started_unix_s, summary.ended_unix_s),
                summary.census_count, DescribeVerdict(summary));
    }
    watcher_.Stop();
    if (state_ != nullptr) state_->Close();
    log_.Line("stopped: {} processes live at exit, {} ended processes kept ({} older dropped)",
              ids.size() + watcher_.watched(), ended_.entries().size(), ended_.dropped());
  }

  const CollectOptions& options_;
  Collector& collector_;
  LogSink& log_;
  const int signal_fd_;
  MetricsExporter* const metrics_;  // null without --metrics
  bool metrics_changed_ = false;    // since the last Publish
  uint64_t analyses_ = 0, analyses_published_ = 0;
  double last_analysis_s_ = 0, last_analysis_unix_s_ = 0;
  Clock::time_point published_at_{};
  RobustDriftAnalyzer analyzer_;
  // One for every process: each maps the same libraries (symbolizer.h).
  Symbolizer symbolizer_;
  absl::flat_hash_map<uint32_t, Watched> live_;
  EndedProcesses ended_;
  ProcWatcher watcher_;  // --pid, --match
  size_t refused_said_ = 0;
  bool stopping_ = false;
  StateRecorder* state_ = nullptr;
};

// Restores the signal mask and closes the signalfd when RunCollector returns.
class SignalGuard {
 public:
  SignalGuard() {
    sigemptyset(&handled_);
    for (int signal_number : {SIGHUP, SIGINT, SIGTERM}) sigaddset(&handled_, signal_number);
    sigprocmask(SIG_BLOCK, &handled_, &old_);
    fd_ = signalfd(-1, &handled_, SFD_NONBLOCK | SFD_CLOEXEC);
  }
  ~SignalGuard() {
    if (fd_ >= 0) close(fd_);
    sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
  int fd() const { return fd_; }

 private:
  sigset_t handled_, old_;
  int fd_ = -1;
};

}  // namespace

bool CollectorAdmits(uid_t peer_uid, uid_t our_uid, const CollectOptions& options) {
  if (peer_uid == our_uid || peer_uid == 0 || options.allow_any_uid) return true;
  return std::find(options.allowed_uids.begin(), options.allowed_uids.end(), peer_uid) !=
         options.allowed_uids.end();
}

namespace {

void SayMetricsAddress(LogSink& log, const CollectOptions& options,
                       const MetricsExporter* metrics) {
  if (metrics == nullptr) return;
  const bool v6 = options.metrics->host.find(':') != std::string::npos;
  log.Line("metrics on http://{}{}{}:{}/metrics", v6 ? "[" : "", options.metrics->host,
           v6 ? "]" : "", metrics->port());
}

}  // namespace

absl::Status RunCollector(const CollectOptions& options) {
  if (!(options.check_every_s > 0 && std::isfinite(options.check_every_s))) {
    return absl::InvalidArgumentError("the check period must be a positive number of seconds");
  }
  LogSink log(options.log_path);
  if (absl::Status status = log.Open(); !status.ok()) return status;
  // Signals first: a SIGTERM from the moment the socket exists ends the collection cleanly.
  SignalGuard signals;
  if (signals.fd() < 0) {
    return absl::InternalError(fmt::format("signalfd: {}", std::strerror(errno)));
  }
  if (absl::Status status = CheckWatchedPids(options.watch); !status.ok()) return status;
  // After the signals are blocked, so that the server's threads never take them.
  std::unique_ptr<MetricsExporter> metrics;
  if (options.metrics.has_value()) {
    absl::StatusOr<std::unique_ptr<MetricsExporter>> started =
        MetricsExporter::Start(*options.metrics, options.prometheus, options.version);
    if (!started.ok()) return started.status();
    metrics = std::move(*started);
  }
  if (options.socket_path.empty()) {  // only processes watched through /proc
    log.Line("watching through /proc only, no socket (pid {})", getpid());
    SayMetricsAddress(log, options, metrics.get());
    std::unique_ptr<Collector> offline = Collector::CreateOffline();
    CollectLoop loop(options, *offline, log, signals.fd(), metrics.get());
    return loop.Run();
  }
  const bool others = options.allow_any_uid || !options.allowed_uids.empty();
  absl::StatusOr<std::unique_ptr<Collector>> collector =
      Collector::Listen(options.socket_path, others ? 0666 : 0600);
  if (!collector.ok()) return collector.status();
  const uid_t our_uid = geteuid();
  (*collector)->set_admission([&options, our_uid](const PeerInfo& peer) {
    return CollectorAdmits(peer.uid, our_uid, options);
  });
  std::vector<std::string> admitted = {absl::StrCat(our_uid)};
  if (our_uid != 0) admitted.push_back("0");
  for (uid_t uid : options.allowed_uids) admitted.push_back(absl::StrCat(uid));
  log.Line("listening on {} (pid {}; admits uids {})", options.socket_path, getpid(),
           options.allow_any_uid ? std::string("all") : absl::StrJoin(admitted, ","));
  SayMetricsAddress(log, options, metrics.get());
  CollectLoop loop(options, **collector, log, signals.fd(), metrics.get());
  std::unique_ptr<StateRecorder> state;
  if (!options.state.dir.empty()) {
    absl::StatusOr<std::unique_ptr<StateRecorder>> recorder = StateRecorder::Create(
        options.state, **collector, [&log](const std::string& line) { log.Line("{}", line); });
    if (!recorder.ok()) return recorder.status();
    state = std::move(*recorder);
    (*collector)->set_tap(state.get());
    loop.set_state(state.get());
  }
  return loop.Run();
}

}  // namespace dw::report
