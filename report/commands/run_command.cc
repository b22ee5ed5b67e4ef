#include "report/commands/run_command.h"

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
#include "report/commands/launch_check.h"
#include "report/commands/run_watch.h"
#include "report/commands/shim_locator.h"

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
    if (IsShimVariable(var)) continue;
    env.emplace_back(var);
  }
  env.push_back(absl::StrCat("LD_PRELOAD=", PreloadList(shim, previous_preload, sanitizers)));
  for (const auto& [name, value] : ShimVariables({.socket_path = socket,
                                   .interval_ms = options.interval_ms,
                                   .sample_mean_bytes = options.sample_mean_bytes})) {
    env.push_back(absl::StrCat(name, "=", value));
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

}  // namespace dw::report
