// Tests of what `driftwatch run` does about processes it cannot hear from: children that switch
// uid (admitted by the process tree, strangers refused), processes that never connect (listed,
// and the verdict is inconclusive), a collector out of fds (no spinning, peers turned away and
// counted), and commands the shim cannot load into (refused before they run).
//
// The fake census client stands in for the shim; an empty shared object is preloaded in its
// place. Tests that switch uid need root and skip otherwise.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "report/commands/launch_check.h"
#include "report/commands/run_command.h"
#include "report/commands/run_watch.h"
#include "report/outputs/report_output.h"
#include "report/transport/process_tree.h"
#include "tests/report/cli_runner.h"

namespace dw::report {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::EndsWith;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uid_t kNobody = 65534;

RunOptions ShellRun(const std::string& script, uint32_t interval_ms) {
  RunOptions options;
  options.command = {"/bin/sh", "-c", script};
  options.shim_path = NOOP_SHIM;
  options.interval_ms = interval_ms;
  options.drain_grace_s = 1.0;
  return options;
}

TEST(RunSafetyTest, ChildThatSwitchesToNobodyIsHeard) {
  if (geteuid() != 0) GTEST_SKIP() << "switching to uid 65534 needs root";
  // The second client runs as nobody, as a worker that dropped privileges does.
  const std::string client = FAKE_CENSUS_CLIENT;
  absl::StatusOr<RunResult> result = RunUnderShim(
      ShellRun(client + " --censuses 25 & setpriv --reuid=65534 --regid=65534 --clear-groups " +
                   client + " --censuses 25 --leak-bytes 2048; wait",
               20));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->child_exit.code, 0) << "9: the nobody client could not connect";
  ASSERT_THAT(result->processes, SizeIs(2)) << "both the root and the nobody process are heard";
  std::vector<int64_t> leaked;
  for (const ProcessReport& process : result->processes) {
    const auto leaks = FindSitesByFunction(process, "LeakHere");
    ASSERT_THAT(leaks, SizeIs(1));
    EXPECT_EQ(leaks[0]->finding.status, DriftStatus::kDrifting);
    leaked.push_back(leaks[0]->live_bytes);
  }
  EXPECT_THAT(leaked, Contains(25 * 2048)) << "the nobody process's own leak is found";
  EXPECT_THAT(result->refused, IsEmpty());
  EXPECT_THAT(result->unheard, IsEmpty());
  EXPECT_EQ(result->verdict, Verdict::kDrift);
}

TEST(RunSafetyTest, DaemonisedChildThatSwitchesToNobodyIsHeard) {
  if (geteuid() != 0) GTEST_SKIP() << "switching to uid 65534 needs root";
  // The inner shell forks the client and exits at once (a daemonising double fork): the orphan
  // is re-parented to driftwatch, a subreaper, so it is still recognised as the run's.
  const std::string client = FAKE_CENSUS_CLIENT;
  absl::StatusOr<RunResult> result = RunUnderShim(
      ShellRun("sh -c '(sleep 0.3; exec setpriv --reuid=65534 --regid=65534 --clear-groups " +
                   client + " --censuses 30) &'; sleep 1.5",
               20));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->refused, IsEmpty()) << "the orphan was taken for a stranger";
  ASSERT_THAT(result->processes, SizeIs(1));
  EXPECT_EQ(result->processes[0].census_count, 30u);
}

// Connects to `socket_path` `times` times as uid nobody from a forked child, sending one byte
// each time, then waits to be killed. Returns the child's pid.
pid_t ConnectAsNobody(const std::string& socket_path, int times) {
  const pid_t child = fork();
  if (child != 0) return child;
  if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(1);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  for (int i = 0; i < times; ++i) {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) _exit(2);
    if (write(fd, "x", 1) != 1) _exit(3);
  }
  pause();
  _exit(0);
}

TEST(RunSafetyTest, PeerOfAnotherUidOutsideTheRunIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "switching to uid 65534 needs root";
  absl::StatusOr<std::unique_ptr<Collector>> collector = Collector::Create();
  ASSERT_TRUE(collector.ok()) << collector.status();
  // The socket is reachable by other uids (that is what lets a run's nobody workers in), so the
  // credentials check is what keeps a stranger out. Here every other uid is a stranger.
  (*collector)->set_admission([](const PeerInfo&) { return false; });
  const pid_t stranger = ConnectAsNobody((*collector)->socket_path(), 3);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((*collector)->refused().empty() && std::chrono::steady_clock::now() < give_up) {
    ASSERT_TRUE((*collector)->PollOnce(50, {}).ok());
  }
  for (int round = 0; round < 5; ++round) ASSERT_TRUE((*collector)->PollOnce(20, {}).ok());
  kill(stranger, SIGKILL);
  waitpid(stranger, nullptr, 0);
  ASSERT_THAT((*collector)->refused(), SizeIs(1)) << "three connections, one pid: listed once";
  EXPECT_EQ((*collector)->refused()[0].pid, stranger);
  EXPECT_EQ((*collector)->refused()[0].uid, kNobody);
  EXPECT_EQ((*collector)->open_connections(), 0u) << "refused peers are closed unread";
  EXPECT_THAT((*collector)->Finish(), IsEmpty());
}

PeerInfo NobodyPeer(pid_t pid) {
  PeerInfo peer;
  peer.pid = pid;
  peer.uid = kNobody;
  return peer;
}

TEST(RunSafetyTest, AdmitsOnlyTheRunsDescendants) {
  RunWatch watch(getpid(), "/nonexistent/census.sock", NOOP_SHIM, 1.0);
  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  EXPECT_TRUE(watch.Admits(NobodyPeer(child)));
  EXPECT_FALSE(watch.Admits(NobodyPeer(1))) << "init is not part of the run";
  EXPECT_FALSE(watch.Admits(NobodyPeer(getppid()))) << "nor is our parent";
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

TEST(RunSafetyTest, ProcessTreeReadsParentsWhateverTheProcessName) {
  // A name with ") " in it must not shift the fields of /proc/<pid>/stat.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_NAME, "a) S 1 (b");
    const pid_t grandchild = fork();
    if (grandchild == 0) {
      pause();
      _exit(0);
    }
    ssize_t ignored = write(ready[1], &grandchild, sizeof(grandchild));
    (void)ignored;
    pause();
    _exit(0);
  }
  pid_t grandchild = 0;
  ASSERT_EQ(read(ready[0], &grandchild, sizeof(grandchild)),
            static_cast<ssize_t>(sizeof(grandchild)));
  std::optional<ProcStat> stat = ReadProcStat(child);
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->ppid, getpid());
  EXPECT_THAT(stat->state, ::testing::AnyOf('S', 'R')) << "fields shifted by the name";
  EXPECT_TRUE(IsDescendantOf(grandchild, getpid()));
  std::vector<pid_t> descendants;
  for (const ProcStat& each : ListDescendants(getpid())) descendants.push_back(each.pid);
  EXPECT_THAT(descendants, ::testing::UnorderedElementsAre(child, grandchild));
  kill(grandchild, SIGKILL);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
}

TEST(RunSafetyTest, ProcessThatNeverConnectsMakesTheRunInconclusive) {
  // The client is steady (no leak); `sleep` carries the shim's environment but never connects.
  absl::StatusOr<RunResult> result = RunUnderShim(ShellRun(
      std::string(FAKE_CENSUS_CLIENT) + " --censuses 60 --leak-bytes 0 & sleep 2; wait", 50));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_THAT(result->processes, SizeIs(1));
  EXPECT_THAT(result->unheard,
              Contains(AllOf(Field(&UnheardProcess::exe, EndsWith("/sleep")),
                             Field(&UnheardProcess::reason, HasSubstr("never connected")))));
  EXPECT_EQ(result->verdict, Verdict::kInconclusive) << "steady would hide the silent process";
  EXPECT_EQ(ExitCodeFor(*result), kExitInconclusive);
  EXPECT_THAT(RenderVerdictJson(*result), HasSubstr(R"("unheard_processes":[{"pid":)"));
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  PrintTerminalReport(*result, out);
  std::fclose(out);
  EXPECT_THAT(std::string(text, size), HasSubstr("never sent a census"));
  EXPECT_THAT(std::string(text, size), HasSubstr("/sleep: never connected"));
  free(text);
}

// Restores RLIMIT_NOFILE when the test ends.
class FdLimit {
 public:
  explicit FdLimit(rlim_t soft) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    setrlimit(RLIMIT_NOFILE, &lowered);
  }
  ~FdLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

TEST(RunSafetyTest, CollectorOutOfFdsDoesNotSpinAndSaysSo) {
  const std::string client = FAKE_CENSUS_CLIENT;
  RunOptions options = ShellRun(
      "i=0; while [ $i -lt 100 ]; do " + client + " --censuses 10 & i=$((i+1)); done; wait", 250);
  const double cpu_before = CpuSeconds();
  const auto wall_before = std::chrono::steady_clock::now();
  absl::StatusOr<RunResult> result;
  {
    FdLimit limit(64);  // 100 clients alive at once cannot all have an fd in the collector
    result = RunUnderShim(options);
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  const double cpu = CpuSeconds() - cpu_before;
  ASSERT_TRUE(result.ok()) << result.status();
  std::fprintf(stderr, "collector: %.2f s of CPU in %.2f s\n", cpu, wall);
  EXPECT_LT(cpu, 0.15 * wall)
      << "the collector spins (measured: 0.06 s of 2.8 s; 1.2 s of 2.9 s when it spun)";
  EXPECT_GT(result->turned_away, 0u) << "100 clients at once under a limit of 64 fds";
  EXPECT_NE(result->verdict, Verdict::kSteady);
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  PrintTerminalReport(*result, out);
  std::fclose(out);
  EXPECT_TRUE(std::string(text, size).find("turned away") != std::string::npos);
  free(text);
}

TEST(RunSafetyTest, SanitizerRuntimeInTheCallersPreloadStaysFirst) {
  const std::string asan = "/usr/lib/x86_64-linux-gnu/libasan.so.8";
  if (!std::filesystem::exists(asan)) GTEST_SKIP() << asan << " is not installed";
  // ASan refuses to start unless its runtime is the first library loaded.
  setenv("LD_PRELOAD", (asan + ":" + NOOP_SHIM).c_str(), 1);
  setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
  RunOptions options = ShellRun(
      std::string("test \"$LD_PRELOAD\" = \"") + asan + ":" + NOOP_SHIM + ":" + NOOP_SHIM + "\"",
      100);
  options.drain_grace_s = 0.1;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  unsetenv("LD_PRELOAD");
  unsetenv("ASAN_OPTIONS");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->child_exit.code, 0) << "LD_PRELOAD is not <asan>:<shim>:<the rest>";
}

// A scratch directory removed when the test ends.
class ScratchDir {
 public:
  ScratchDir() {
    std::string path = (std::filesystem::temp_directory_path() / "dw-launch-XXXXXX").string();
    dir_ = mkdtemp(path.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

TEST(LaunchCheckTest, RefusesStaticBinariesAndScriptsThatRunThem) {
  absl::StatusOr<LaunchPlan> plan = CheckLaunch(STATIC_PROGRAM);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("statically linked"));
  ScratchDir dir;
  const std::string script =
      dir.Write("static.sh", std::string("#!") + STATIC_PROGRAM + "\n", 0755);
  plan = CheckLaunch(script);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("its interpreter"));
}

TEST(LaunchCheckTest, AcceptsDynamicProgramsAndShellScripts) {
  ScratchDir dir;
  EXPECT_TRUE(CheckLaunch(dir.Write("ok.sh", "#!/bin/sh\nexit 0\n", 0755)).ok());
  EXPECT_TRUE(CheckLaunch(dir.Write("env.sh", "#!/usr/bin/env sh\nexit 0\n", 0755)).ok());
  absl::StatusOr<LaunchPlan> plan = CheckLaunch(FAKE_CENSUS_CLIENT);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->sanitizer_runtimes, IsEmpty());
}

TEST(LaunchCheckTest, RefusesSetUidBinaryOfAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "giving a file to uid 65534 needs root";
  ScratchDir dir;
  const std::string copy = dir.path() + "/true";
  std::filesystem::copy_file("/bin/true", copy);
  ASSERT_EQ(chown(copy.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(chmod(copy.c_str(), 04755), 0);
  absl::StatusOr<LaunchPlan> plan = CheckLaunch(copy);
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("set-user-ID"));
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("AT_SECURE"));
}

TEST(LaunchCheckTest, RefusesFileCapabilitiesForNonRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "setting file capabilities needs root";
  if (!std::filesystem::exists("/usr/sbin/setcap")) GTEST_SKIP() << "setcap is not installed";
  ScratchDir dir;
  chmod(dir.path().c_str(), 0755);  // nobody must reach the copy
  const std::string copy = dir.path() + "/true";
  std::filesystem::copy_file("/bin/true", copy);
  ASSERT_EQ(std::system(("/usr/sbin/setcap cap_net_raw+ep " + copy).c_str()), 0);
  EXPECT_TRUE(CheckLaunch(copy).ok()) << "root gains nothing from file capabilities";
  // As nobody, the capabilities are a gain: AT_SECURE.
  const pid_t child = fork();
  if (child == 0) {
    if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(2);
    absl::StatusOr<LaunchPlan> plan = CheckLaunch(copy);
    _exit(!plan.ok() && absl::StrContains(plan.status().message(), "file capabilities") ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "not refused for uid nobody";
}

TEST(LaunchCheckTest, SanitizerRuntimeNames) {
  EXPECT_TRUE(IsSanitizerRuntime("libasan.so.8"));
  EXPECT_TRUE(IsSanitizerRuntime("/usr/lib/x86_64-linux-gnu/libtsan.so.2"));
  EXPECT_TRUE(IsSanitizerRuntime("libubsan.so.1"));
  EXPECT_FALSE(IsSanitizerRuntime("libdriftwatch.so"));
  EXPECT_FALSE(IsSanitizerRuntime("/opt/libasan/libfoo.so"));
}

TEST(LaunchCheckTest, CliExitsTwoBeforeRunningAStaticBinary) {
  ScratchDir dir;
  const std::string marker = dir.path() + "/ran";
  cli::Outcome outcome =
      cli::RunCli(std::string("run -- ") + STATIC_PROGRAM + " " + marker, cli::kShimEnv);
  EXPECT_EQ(outcome.exit_code, 2) << outcome.output;
  EXPECT_THAT(outcome.output, HasSubstr("statically linked"));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the command must not run at all";
  outcome = cli::RunCli("run -- " + dir.path() + "/no-such-program", cli::kShimEnv);
  EXPECT_EQ(outcome.exit_code, 2) << outcome.output;
  EXPECT_THAT(outcome.output, HasSubstr("no-such-program"));
}

}  // namespace
}  // namespace dw::report
