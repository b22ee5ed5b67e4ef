#include "report/run_command.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fmt/format.h"
#include "report/launch_check.h"
#include "report/run_watch.h"
#include "report/shim_locator.h"

extern char** environ;

namespace dw::report {
namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(int error) { return std::strerror(error); }

// Resolves argv[0] like execvp would, but before fork, so the child only calls execve (which is
// async-signal-safe) and "command not found" is a set-up error we can report clearly.
absl::StatusOr<std::string> ResolveCommand(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("empty command name");
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("cannot execute ", name, ": ", ErrnoText(errno)));
    }
    return name;
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    std::error_code error;
    if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate, error)) {
      return candidate;
    }
  }
  return absl::NotFoundError(absl::StrCat("command not found in PATH: ", name));
}

// LD_PRELOAD for the command: sanitizer runtimes first (theirs must be the first library loaded),
// then the shim, so that its interposers win over any other preloaded allocator hooks, then the
// rest of the caller's LD_PRELOAD.
std::string PreloadList(const std::string& shim, const std::string& previous,
                        const std::vector<std::string>& sanitizers) {
  std::vector<std::string> first(sanitizers.begin(), sanitizers.end()), rest;
  for (absl::string_view entry :
       absl::StrSplit(previous, absl::ByAnyChar(": "), absl::SkipEmpty())) {
    (IsSanitizerRuntime(std::string_view(entry.data(), entry.size())) ? first : rest)
        .emplace_back(entry);
  }
  first.push_back(shim);
  first.insert(first.end(), rest.begin(), rest.end());
  return absl::StrJoin(first, ":");
}

std::vector<std::string> BuildEnvironment(const std::string& shim, const std::string& socket,
                                          const RunOptions& options,
                                          const std::vector<std::string>& sanitizers) {
  std::vector<std::string> env;
  std::string previous_preload;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view var(*entry);
    if (var.starts_with("LD_PRELOAD=")) {
      previous_preload = std::string(var.substr(std::strlen("LD_PRELOAD=")));
      continue;
    }
    // What the run sets is the run's: an inherited value would contradict its options.
    if (var.starts_with("DRIFTWATCH_SOCKET=") || var.starts_with("DRIFTWATCH_INTERVAL_MS=") ||
        var.starts_with("DRIFTWATCH_MODE=") || var.starts_with("DRIFTWATCH_SAMPLE_BYTES=")) {
      continue;
    }
    env.emplace_back(var);
  }
  env.push_back(absl::StrCat("LD_PRELOAD=", PreloadList(shim, previous_preload, sanitizers)));
  env.push_back(absl::StrCat("DRIFTWATCH_SOCKET=", socket));
  env.push_back(absl::StrCat("DRIFTWATCH_INTERVAL_MS=", options.interval_ms));
  if (options.sample_mean_bytes != 0) {
    env.push_back("DRIFTWATCH_MODE=sampled");
    env.push_back(absl::StrCat("DRIFTWATCH_SAMPLE_BYTES=", options.sample_mean_bytes));
  }
  return env;
}

ExitInfo DecodeWaitStatus(int status) {
  ExitInfo info;
  if (WIFSIGNALED(status)) {
    info.signaled = true;
    info.signal = WTERMSIG(status);
  } else {
    info.code = WEXITSTATUS(status);
  }
  return info;
}

// Restores the signal mask when RunUnderShim returns, whatever the path.
class SignalMaskGuard {
 public:
  explicit SignalMaskGuard(const sigset_t& old) : old_(old) {}
  ~SignalMaskGuard() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int MillisUntil(Clock::time_point now, Clock::time_point when) {
  if (when <= now) return 0;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when - now).count() + 1;
  return static_cast<int>(std::min<int64_t>(ms, std::numeric_limits<int>::max()));
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Status CheckOptions(const RunOptions& options) {
  if (options.command.empty()) return absl::InvalidArgumentError("no command to run");
  if (options.interval_ms == 0) return absl::InvalidArgumentError("interval must be positive");
  if (options.duration_s.has_value() &&
      !(*options.duration_s > 0 && std::isfinite(*options.duration_s))) {
    return absl::InvalidArgumentError("duration must be a positive number of seconds");
  }
  return absl::OkStatus();
}

// Makes the calling process a child subreaper for the duration of the run, then restores it.
class SubreaperGuard {
 public:
  SubreaperGuard() {
    prctl(PR_GET_CHILD_SUBREAPER, &previous_);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  ~SubreaperGuard() { prctl(PR_SET_CHILD_SUBREAPER, previous_); }
  SubreaperGuard(const SubreaperGuard&) = delete;
  SubreaperGuard& operator=(const SubreaperGuard&) = delete;

 private:
  int previous_ = 0;
};

// Forks and execs the command. Everything the child needs is built before fork: between fork
// and exec only async-signal-safe calls are allowed. The child reports a failed execve through a
// close-on-exec pipe; EOF means exec worked.
absl::StatusOr<pid_t> StartCommand(const std::string& executable,
                                   const std::vector<std::string>& command,
                                   const std::vector<std::string>& env, const sigset_t& old_mask) {
  std::vector<char*> envp;
  for (const std::string& var : env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", ErrnoText(errno)));
  }
  const pid_t child = fork();
  if (child < 0) {
    const int error = errno;
    close(exec_pipe[0]);
    close(exec_pipe[1]);
    return absl::InternalError(absl::StrCat("fork: ", ErrnoText(error)));
  }
  if (child == 0) {
    close(exec_pipe[0]);
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    execve(executable.c_str(), argv.data(), envp.data());
    const int error = errno;
    ssize_t ignored = write(exec_pipe[1], &error, sizeof(error));
    (void)ignored;
    _exit(127);
  }
  close(exec_pipe[1]);
  int exec_error = 0;
  ssize_t got;
  do {
    got = read(exec_pipe[0], &exec_error, sizeof(exec_error));
  } while (got < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof(exec_error))) {
    waitpid(child, nullptr, 0);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute ", executable, ": ", ErrnoText(exec_error)));
  }
  return child;
}

Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// From the command's start to the end of collection: reaps, stops the command at the deadline,
// forwards signals, scans the run's processes and says once when a peer was refused or turned
// away.
class RunLoop {
 public:
  RunLoop(const RunOptions& options, Collector& collector, RunWatch& watch, int signal_fd,
          Clock::time_point start, RunResult& result)
      : options_(options),
        collector_(collector),
        watch_(watch),
        signal_fd_(signal_fd),
        start_(start),
        end_(start),
        result_(result),
        deadline_(options.duration_s.has_value() ? start + Seconds(*options.duration_s)
                                                 : Clock::time_point::max()) {}

  absl::Status Run() {
    while (true) {
      const auto now = Clock::now();
      Reap(now);
      Advance(now);
      if (phase_ == Phase::kDraining && now >= drain_until_) break;
      if (now >= next_scan_) {
        watch_.Scan();
        next_scan_ = now + kScanPeriod;
      }
      pollfd extra[1] = {{.fd = signal_fd_, .events = POLLIN, .revents = 0}};
      absl::StatusOr<bool> activity =
          collector_.PollOnce(Timeout(now), std::span<pollfd>(extra, signal_fd_ >= 0 ? 1 : 0));
      if (!activity.ok()) {
        kill(result_.child_pid, SIGKILL);
        if (phase_ != Phase::kDraining) waitpid(result_.child_pid, nullptr, 0);
        return activity.status();
      }
      if (signal_fd_ >= 0 && (extra[0].revents & POLLIN) != 0) ForwardSignals();
      WarnOnce();
      // Every process image has closed its connection and nothing new arrived: all final
      // censuses are in, no need to wait out the grace period.
      if (phase_ == Phase::kDraining && !*activity && collector_.open_connections() == 0) break;
    }
    result_.duration_s = std::chrono::duration<double>(end_ - start_).count();
    return absl::OkStatus();
  }

 private:
  enum class Phase { kRunning, kTerminating, kDraining };
  static constexpr auto kScanPeriod = std::chrono::milliseconds(200);
  static constexpr int kLastLookMs = 5;

  // Every child of ours: the command, and orphans of the run re-parented to us.
  void Reap(Clock::time_point now) {
    int status = 0;
    pid_t reaped;
    while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
      if (reaped != result_.child_pid) {
        watch_.NoteReaped(reaped);
        continue;
      }
      result_.child_exit = DecodeWaitStatus(status);
      end_ = now;
      phase_ = Phase::kDraining;
      drain_until_ = now + Seconds(options_.drain_grace_s);
    }
  }

  void Advance(Clock::time_point now) {
    if (phase_ == Phase::kRunning && now >= deadline_) {
      kill(result_.child_pid, SIGTERM);
      result_.ended_by_us = true;
      phase_ = Phase::kTerminating;
      kill_at_ = now + Seconds(options_.kill_grace_s);
    }
    if (phase_ == Phase::kTerminating && !sent_kill_ && now >= kill_at_) {
      kill(result_.child_pid, SIGKILL);
      sent_kill_ = true;
    }
  }

  // waitpid is polled, so the loop wakes at least every 50 ms.
  int Timeout(Clock::time_point now) const {
    int timeout = 50;
    if (phase_ == Phase::kRunning) timeout = std::min(timeout, MillisUntil(now, deadline_));
    if (phase_ == Phase::kTerminating && !sent_kill_) {
      timeout = std::min(timeout, MillisUntil(now, kill_at_));
    }
    if (phase_ == Phase::kDraining) {
      timeout = std::min(timeout, MillisUntil(now, drain_until_));
      // Every connection is closed: one short look for a connection still being made, then the
      // run is over (a short command does not wait out the full poll period).
      if (collector_.open_connections() == 0) timeout = std::min(timeout, kLastLookMs);
    }
    return timeout;
  }

  void ForwardSignals() {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      // SIGCHLD only wakes the loop, which reaps at once rather than at its next timeout.
      if (info.ssi_signo == SIGCHLD || phase_ == Phase::kDraining) continue;
      kill(result_.child_pid, static_cast<int>(info.ssi_signo));
      // The user asked to stop: the command ending from it is not a failure of the command.
      result_.ended_by_us = true;
    }
  }

  // The report lists every refused and turned-away peer; the first of each is said at once, so
  // a long run does not hide it until the end.
  void WarnOnce() {
    if (!warned_refused_ && !collector_.refused().empty()) {
      const PeerInfo& peer = collector_.refused().front();
      fmt::print(stderr,
                 "driftwatch: warning: refused a census connection from pid {} (uid {}, {}): not "
                 "a process of this run\n",
                 peer.pid, peer.uid, peer.exe);
      warned_refused_ = true;
    }
    if (!warned_turned_away_ && !collector_.turned_away().empty()) {
      const PeerInfo& peer = collector_.turned_away().front();
      fmt::print(stderr,
                 "driftwatch: warning: out of file descriptors: turned away the census "
                 "connection of pid {} ({}); raise 'ulimit -n' for driftwatch\n",
                 peer.pid, peer.exe);
      warned_turned_away_ = true;
    }
  }

  const RunOptions& options_;
  Collector& collector_;
  RunWatch& watch_;
  const int signal_fd_;
  const Clock::time_point start_;
  Clock::time_point end_;
  RunResult& result_;
  const Clock::time_point deadline_;
  Phase phase_ = Phase::kRunning;
  Clock::time_point kill_at_ = Clock::time_point::max();
  Clock::time_point drain_until_ = Clock::time_point::max();
  Clock::time_point next_scan_{};
  bool sent_kill_ = false;
  bool warned_refused_ = false;
  bool warned_turned_away_ = false;
};

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kSteady:
      return "steady";
    case Verdict::kDrift:
      return "drift";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "inconclusive";
}

const SiteReport* ProcessReport::FindSite(wire::Kind kind, uint32_t site_id) const {
  for (const SiteReport& site : sites) {
    if (site.kind == kind && site.site_id == site_id) return &site;
  }
  return nullptr;
}

// libc and its old satellites, the C++ runtime, the loader, the shim, and the allocators a
// service may load (their operator new or aligned helpers can sit above the user's frame).
bool IsRuntimeFrame(const Frame& frame) {
  const std::string base = Basename(frame.module);
  for (const char* prefix :
       {"libc.so", "libstdc++.so", "libgcc_s", "ld-linux", "libdriftwatch.so", "libc-",
        "libpthread.so", "libpthread-", "librt.so", "librt-", "libdl.so", "libdl-",
        "libjemalloc.so", "libtcmalloc", "libmimalloc.so", "libsnmalloc", "libhoard"}) {
    if (base.starts_with(prefix)) return true;
  }
  return false;
}

namespace {

// Library code compiled into the user's binary: std templates, and anything inlined from a
// system header (inlined frames carry their plain DWARF name, e.g. "allocate", so the file
// says where they come from).
bool IsLibraryTemplate(const Frame& frame) {
  return frame.function.starts_with("std::") || frame.function.starts_with("__gnu_cxx::") ||
         frame.file.starts_with("/usr/include/");
}

// The headline is the first frame that is neither: once one is seen, the frames after it cannot
// change it.
bool IsHeadlineCandidate(const Frame& frame) {
  return !IsRuntimeFrame(frame) && !IsLibraryTemplate(frame);
}

}  // namespace

size_t HeadlineFrame(const std::vector<Frame>& frames) {
  std::optional<size_t> first_outside_runtime;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (IsRuntimeFrame(frames[i])) continue;
    if (!first_outside_runtime.has_value()) first_outside_runtime = i;
    if (!IsLibraryTemplate(frames[i])) return i;
  }
  return first_outside_runtime.value_or(0);
}

std::vector<const SiteReport*> FindSitesByFunction(const ProcessReport& process,
                                                   std::string_view function,
                                                   std::optional<wire::Kind> kind) {
  std::vector<const SiteReport*> found;
  for (const SiteReport& site : process.sites) {
    if (kind.has_value() && site.kind != *kind) continue;
    for (const Frame& frame : site.frames) {
      if (frame.function == function ||
          (frame.function.starts_with(function) && frame.function.size() > function.size() &&
           frame.function[function.size()] == '(')) {
        found.push_back(&site);
        break;
      }
    }
  }
  return found;
}

std::vector<const ProcessReport*> FindProcessesByExe(const RunResult& result,
                                                     std::string_view exe) {
  std::vector<const ProcessReport*> found;
  for (const ProcessReport& process : result.processes) {
    if (process.identity.exe == exe ||
        process.identity.exe.ends_with(absl::StrCat("/", std::string(exe)))) {
      found.push_back(&process);
    }
  }
  return found;
}

std::optional<LimitProjection> ProjectToLimit(wire::Kind kind, const CensusTotals& totals,
                                              const std::optional<ProcessLimits>& limits,
                                              double slope_per_hour) {
  if (!limits.has_value()) return std::nullopt;
  struct Candidate {
    uint64_t value;
    const char* name;
  };
  std::vector<Candidate> candidates;
  uint64_t current = 0;
  switch (kind) {
    case wire::Kind::kFds:
      candidates = {{limits->nofile_soft, "RLIMIT_NOFILE"}};
      current = totals.fd_count;
      break;
    case wire::Kind::kThreads:
      // All three count more than this process's threads; the process alone reaches them last,
      // so this is the latest the process can fail, not the earliest.
      candidates = {{limits->nproc_soft, "RLIMIT_NPROC"},
                    {limits->pids_max, "pids.max"},
                    {limits->threads_max, "threads-max"}};
      current = totals.thread_count;
      break;
    case wire::Kind::kHeap:
      // The cgroup limit is what the OOM killer enforces; without one, the machine's memory.
      candidates = {{limits->memory_limit_bytes != 0 ? limits->memory_limit_bytes
                                                     : limits->memory_total_bytes,
                     limits->memory_limit_bytes != 0 ? "memory.max" : "MemTotal"}};
      current = totals.rss_bytes;
      break;
    case wire::Kind::kTimers:
      return std::nullopt;  // RLIMIT_SIGPENDING and kernel memory are not sent by the shim
  }
  const Candidate* tightest = nullptr;
  for (const Candidate& candidate : candidates) {
    if (candidate.value == 0) continue;
    if (tightest == nullptr || candidate.value < tightest->value) tightest = &candidate;
  }
  if (tightest == nullptr) return std::nullopt;
  LimitProjection projection;
  projection.name = tightest->name;
  projection.value = tightest->value;
  projection.current = current;
  if (slope_per_hour > 0 && tightest->value > current) {
    const double seconds = static_cast<double>(tightest->value - current) / slope_per_hour * 3600;
    if (std::isfinite(seconds)) projection.time_to_limit_s = seconds;
  }
  return projection;
}

namespace {

std::vector<Frame> SymbolizeStack(Symbolizer& symbolizer, const SiteStack& stack) {
  return symbolizer.Symbolize(stack.return_addresses, stack.modules.get(), stack.module_generation);
}

// The frames of `stack` from the innermost up to its headline (HeadlineFrame gives the same
// index as on the whole stack), or all of them when no frame settles it. Most stacks of a large
// process are only grouped by their headline, never printed: their callers are not needed.
std::vector<Frame> SymbolizeToHeadline(Symbolizer& symbolizer, const SiteStack& stack) {
  std::vector<Frame> frames;
  for (uint64_t address : stack.return_addresses) {
    std::vector<Frame> expanded =
        symbolizer.SymbolizeWithInlines(address, stack.modules.get(), stack.module_generation);
    for (Frame& frame : expanded) {
      const bool settled = IsHeadlineCandidate(frame);
      frames.push_back(std::move(frame));
      if (settled) return frames;
    }
  }
  return frames;
}

// The whole stacks of what the outputs print of a process whose stacks were symbolised up to
// their headline: each group's own stack and its analysed members (report_output.cc).
void SymbolizeReportedStacks(ProcessReport& process,
                             const absl::flat_hash_map<uint32_t, SiteStack>& stacks,
                             Symbolizer& symbolizer) {
  const auto fill = [&](SiteReport& site) {
    if (site.frames.empty()) return;
    if (auto it = stacks.find(site.site_id); it != stacks.end()) {
      site.frames = SymbolizeStack(symbolizer, it->second);
    }
  };
  for (SiteReport& group : process.groups) {
    fill(group);
    if (group.members.size() < 2) continue;
    for (const GroupMember& member : group.members) {
      if (member.analysed && member.site_index < process.sites.size()) {
        fill(process.sites[member.site_index]);
      }
    }
  }
}

}  // namespace

std::vector<ProcessReport> BuildProcessReports(std::vector<ConnectionRecord> records,
                                               const DriftAnalyzer& analyzer,
                                               Symbolizer& symbolizer,
                                               const DriftBudgets& budgets) {
  std::vector<ProcessReport> processes;
  for (ConnectionRecord& record : records) {
    // A peer that never said Hello is not a driftwatch process (or failed at once): nothing to
    // report about it.
    if (!record.hello.has_value()) continue;
    ProcessReport process;
    process.identity = record.hello->identity;
    process.interval_ms = record.hello->interval_ms;
    process.mode = record.hello->mode;
    process.sample_mean_bytes = record.hello->sample_mean_bytes;
    process.census_count = record.census_count;
    process.sequence_gaps = record.sequence_gaps;
    process.saw_final = record.saw_final;
    process.stream_error = record.stream_error;
    process.series = std::move(record.series);
    const ProcessSeries& series = process.series;
    bool full_stacks = true;
    process.heap_total_finding = analyzer.Analyze(series.times(), series.heap_live_bytes());
    if (record.latest.has_value()) {
      const Census& latest = *record.latest;
      process.totals = latest.totals;
      process.limits = latest.limits;
      size_t stack_count = 0;
      for (const auto& counters : latest.counters) stack_count += counters.size();
      full_stacks = stack_count <= kFullStacksUpTo;
      // Sized once: growing by doubling held the old and the new array (~370 B a site) at once.
      process.sites.reserve(stack_count);
      for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
        for (const auto& [site_id, counters] : latest.counters[kind]) {
          SiteReport site;
          site.kind = static_cast<wire::Kind>(kind);
          site.site_id = site_id;
          site.counters = counters;
          site.live = counters.Live();
          site.live_bytes = counters.LiveBytes();
          site.unit = site.kind == wire::Kind::kHeap ? "bytes" : "count";
          site.detail = counters.detail;
          switch (site.kind) {
            case wire::Kind::kHeap:
              AddSaturating(process.heap_live_bytes, site.live_bytes);
              break;
            case wire::Kind::kFds:
              site.fd_types = FdTypeNames(site.detail);
              break;
            case wire::Kind::kTimers:
              site.timer_notify = TimerNotifyNames(site.detail);
              AddSaturating(process.timers_live, site.live);
              break;
            case wire::Kind::kThreads:
              if (auto it = latest.thread_states.find(site_id); it != latest.thread_states.end()) {
                site.thread_state = it->second;
              }
              break;
          }
          if (auto it = record.sites.find(site_id); it != record.sites.end()) {
            site.frames = full_stacks ? SymbolizeStack(symbolizer, it->second)
                                      : SymbolizeToHeadline(symbolizer, it->second);
            site.headline = HeadlineFrame(site.frames);
          }
          process.sites.push_back(std::move(site));
        }
      }
      // Stable order for reports and tests: by kind, then site id.
      std::sort(process.sites.begin(), process.sites.end(),
                [](const SiteReport& a, const SiteReport& b) {
                  return std::pair(a.kind, a.site_id) < std::pair(b.kind, b.site_id);
                });
    }
    BuildSiteGroups(process, analyzer, budgets);
    if (!full_stacks) SymbolizeReportedStacks(process, record.sites, symbolizer);
    // RSS against the tracked heap: RSS drifting while the heap sites do not (or grow at a
    // fraction of its rate) is memory the shim cannot attribute: fragmentation, or mappings,
    // thread stacks and allocators outside malloc.
    const DriftFinding rss = analyzer.Analyze(series.times(), series.rss_bytes());
    const DriftFinding& heap = process.heap_total_finding;
    // Judged on the heap's slope, not its status: a heap growing as fast as RSS explains it even
    // when its own trend is not yet significant.
    constexpr double kUnexplainedShare = 0.25;  // heap growth below this share of RSS growth
    if (rss.status == DriftStatus::kDrifting &&
        heap.slope_per_hour < kUnexplainedShare * rss.slope_per_hour) {
      RssFinding finding;
      finding.status = rss.status;
      finding.slope_per_hour = rss.slope_per_hour;
      finding.heap_slope_per_hour = heap.slope_per_hour;
      finding.confidence = rss.confidence;
      finding.limit =
          ProjectToLimit(wire::Kind::kHeap, process.totals, process.limits, rss.slope_per_hour);
      process.rss_finding = finding;
    }
    const std::pair<const std::vector<int64_t>*, TotalTrend> totals[] = {
        {&series.rss_bytes(), {.name = "rss", .kind = wire::Kind::kHeap}},
        {&series.fds(), {.name = "fds", .kind = wire::Kind::kFds}},
        {&series.threads(), {.name = "threads", .kind = wire::Kind::kThreads}},
    };
    for (const auto& [values, trend] : totals) {
      TotalTrend total = trend;
      total.finding =
          trend.name == std::string_view("rss") ? rss : analyzer.Analyze(series.times(), *values);
      if (total.finding.status != DriftStatus::kDrifting) continue;
      total.limit =
          ProjectToLimit(total.kind, process.totals, process.limits, total.finding.slope_per_hour);
      process.total_trends.push_back(total);
    }
    processes.push_back(std::move(process));
  }
  return processes;
}

Verdict ComputeVerdict(const std::vector<ProcessReport>& processes) {
  bool judged = false, unresolved = false;
  for (const ProcessReport& process : processes) {
    for (const SiteReport& group : process.groups) {
      if (group.finding.status == DriftStatus::kDrifting) return Verdict::kDrift;
      unresolved |= group.finding.status == DriftStatus::kInconclusive;
    }
    judged |= process.heap_total_finding.enough_samples;
  }
  return judged && !unresolved ? Verdict::kSteady : Verdict::kInconclusive;
}

int ExitCodeFor(const RunResult& result) {
  if (result.child_failed) return kExitCommandFailed;
  switch (result.verdict) {
    case Verdict::kDrift:
      return kExitDrift;
    case Verdict::kInconclusive:
      return kExitInconclusive;
    case Verdict::kSteady:
      return kExitSteady;
  }
  return kExitInconclusive;
}

absl::StatusOr<RunResult> RunUnderShim(const RunOptions& options) {
  if (absl::Status status = CheckOptions(options); !status.ok()) return status;
  RunResult result;
  result.command = options.command;
  result.interval_ms = options.interval_ms;
  if (!options.shim_path.empty()) {
    result.shim_path = options.shim_path;
  } else {
    absl::StatusOr<std::string> shim = LocateShim();
    if (!shim.ok()) return shim.status();
    result.shim_path = *shim;
  }
  absl::StatusOr<std::string> executable = ResolveCommand(options.command[0]);
  if (!executable.ok()) return executable.status();
  // Refuses, before anything runs, a command the shim cannot load into.
  absl::StatusOr<LaunchPlan> plan = CheckLaunch(*executable);
  if (!plan.ok()) return plan.status();
  result.notes = plan->notes;
  // Said now as well as in the report: a long run should not hide until its end that it cannot
  // see the heap.
  for (const std::string& note : result.notes) fmt::print(stderr, "driftwatch: note: {}\n", note);

  absl::StatusOr<std::unique_ptr<Collector>> collector = Collector::Create();
  if (!collector.ok()) return collector.status();
  Collector& live = **collector;
  live.set_tap(options.tap);
  const double min_silent_age_s = 2.0 * options.interval_ms / 1000.0 + 1.0;
  RunWatch watch(getpid(), live.socket_path(), result.shim_path, min_silent_age_s);
  live.set_admission([&watch](const PeerInfo& peer) { return watch.Admits(peer); });

  // SIGINT/SIGTERM are blocked and read from a signalfd, so that the poll loop sees them and
  // forwards them instead of dying with the socket directory left behind. SIGCHLD too, so that
  // the loop wakes as soon as the command exits (a short run does not wait out a poll timeout).
  sigset_t forwarded, old_mask;
  sigemptyset(&forwarded);
  sigaddset(&forwarded, SIGCHLD);
  if (options.forward_signals) {
    sigaddset(&forwarded, SIGINT);
    sigaddset(&forwarded, SIGTERM);
  }
  sigprocmask(SIG_BLOCK, &forwarded, &old_mask);
  SignalMaskGuard mask_guard(old_mask);
  FdGuard signal_fd(signalfd(-1, &forwarded, SFD_NONBLOCK | SFD_CLOEXEC));
  if (signal_fd.get() < 0) {
    return absl::InternalError(absl::StrCat("signalfd: ", ErrnoText(errno)));
  }
  // Orphans of the run (daemonising double-forks) are re-parented to us instead of init, so their
  // census connections are still recognised as the run's (RunWatch) and they are reaped here.
  SubreaperGuard subreaper;

  const auto start = Clock::now();
  const std::vector<std::string> env =
      BuildEnvironment(result.shim_path, live.socket_path(), options, plan->sanitizer_runtimes);
  absl::StatusOr<pid_t> child = StartCommand(*executable, options.command, env, old_mask);
  if (!child.ok()) return child.status();
  result.child_pid = *child;

  RunLoop loop(options, live, watch, signal_fd.get(), start, result);
  if (absl::Status status = loop.Run(); !status.ok()) return status;
  watch.Scan();
  std::vector<ConnectionRecord> records = live.Finish();
  absl::flat_hash_set<pid_t> heard;
  for (const ConnectionRecord& record : records) {
    if (!record.hello.has_value()) continue;
    heard.insert(static_cast<pid_t>(record.hello->identity.pid));
    if (record.peer.has_value()) heard.insert(record.peer->pid);
  }
  result.unheard = watch.Unheard(heard, live);
  result.refused = live.refused();
  result.turned_away = live.turned_away_connections();
  AnalyzeCollected(std::move(records), options, result);
  return result;
}

void AnalyzeCollected(std::vector<ConnectionRecord> records, const RunOptions& options,
                      RunResult& result) {
  const pid_t child = result.child_pid;
  ExitInfo& exit = result.child_exit;
  result.child_failed = !result.ended_by_us && (exit.signaled || exit.code != 0);

  RobustDriftAnalyzer default_analyzer({.warmup_s = options.warmup_s});
  Symbolizer symbolizer({.debug_dirs = options.debug_dirs});
  result.processes = BuildProcessReports(
      std::move(records), options.analyzer != nullptr ? *options.analyzer : default_analyzer,
      symbolizer, options.budgets);
  // The direct child's exit status belongs to its last image (an exec replaces the earlier ones).
  for (auto it = result.processes.rbegin(); it != result.processes.rend(); ++it) {
    if (it->identity.pid == static_cast<uint32_t>(child)) {
      it->exit = result.child_exit;
      break;
    }
  }
  result.verdict = ComputeVerdict(result.processes);
  // A process of the run that was never heard from may be the one that drifts.
  if (result.verdict == Verdict::kSteady && !result.unheard.empty()) {
    result.verdict = Verdict::kInconclusive;
  }
}

}  // namespace dw::report
