// lifecycle_test.cc: the shim inside a process's whole life: start-up (unshare), threads
// (pthread_exit from main), children (fork, _Fork, vfork), descriptors (lowest-free), exit
// (library destructors) and whom it sends to. Each case once hung, broke or misreported a
// program (docs/ARCHITECTURE.md, "Lifecycle").
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/e2e/e2e_support.h"

namespace dw::report::e2e {
namespace {

std::string Program(const std::string& name) { return std::string(DW_PROGRAM_DIR) + "/" + name; }

// Runs a command under `driftwatch run`'s machinery at `interval_ms`, stopping it after
// `limit_s` at the latest (a hang shows as ended_by_us).
RunResult RunCommandAt(std::vector<std::string> command, uint32_t interval_ms, double limit_s) {
  RunOptions options;
  options.command = std::move(command);
  options.interval_ms = interval_ms;
  options.duration_s = limit_s;
  options.kill_grace_s = 1.0;
  options.shim_path = DW_SHIM_PATH;
  options.forward_signals = false;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : RunResult{};
}

// The same for one of the test's programs.
RunResult RunAt(const std::string& name, uint32_t interval_ms, double limit_s,
                std::vector<std::string> arguments = {}) {
  arguments.insert(arguments.begin(), Program(name));
  return RunCommandAt(std::move(arguments), interval_ms, limit_s);
}

void ExpectCleanExit(const RunResult& result, int code = 0) {
  EXPECT_FALSE(result.ended_by_us) << "the program had to be stopped: it hung";
  EXPECT_FALSE(result.child_exit.signaled) << "signal " << result.child_exit.signal;
  EXPECT_EQ(result.child_exit.code, code);
}

TEST(LifecycleTest, MainEndingWithPthreadExitStillExits) {
  RunResult result = RunAt("lifecycle_pthread_exit_main", 100, 20);
  ExpectCleanExit(result);
  EXPECT_LT(result.duration_s, 5.0);
  ASSERT_EQ(result.processes.size(), 1u);
  EXPECT_TRUE(result.processes[0].saw_final);
}

TEST(LifecycleTest, UnshareUserNamespaceAtStartWorks) {
  RunResult result = RunAt("lifecycle_unshare_early", 100, 20);
  ExpectCleanExit(result);  // 3: EINVAL, the process was multithreaded
  ASSERT_EQ(result.processes.size(), 1u);
  EXPECT_GE(result.processes[0].census_count, 2u);
}

TEST(LifecycleTest, UnshareCommandWorks) {
  // util-linux's unshare, as a user would run it.
  RunResult result = RunCommandAt({"unshare", "-U", "true"}, 100, 20);
  if (std::system("unshare -U true 2>/dev/null") != 0) GTEST_SKIP() << "no user namespaces here";
  ExpectCleanExit(result);
}

// Capabilities are per thread, while glibc changes users and groups on every thread and aborts
// the program unless all succeed alike: a census thread left with other capabilities than the
// program's failed the next setresgid.
void ExpectPrivilegesDropped(const std::string& how) {
  if (geteuid() != 0) GTEST_SKIP() << "changing user needs root";
  RunResult result = RunAt("lifecycle_drop_privileges", 100, 20, {how});
  ExpectCleanExit(result);
  // The census thread steps aside for each capability call and comes back on a new connection
  // of the same image, which carries the image's series on: one process, not one per connection.
  ASSERT_EQ(result.processes.size(), 1u);
  // 0.3 s before the drop (capset) and 1.5 s of work after it, at 100 ms: censuses from both
  // sides of it, and the final one.
  const ProcessReport& process = result.processes[0];
  EXPECT_GE(process.census_count, 12u);
  EXPECT_TRUE(process.saw_final);
  ASSERT_FALSE(process.series.times().empty());
  EXPECT_GE(process.series.times().back() - process.series.times().front(), 1.2);
}

TEST(LifecycleTest, DroppingRootAfterCapsetWorks) { ExpectPrivilegesDropped("capset"); }

TEST(LifecycleTest, DroppingRootWithSecurebitsWorks) { ExpectPrivilegesDropped("securebits"); }

TEST(LifecycleTest, SetprivCommandWorks) {
  // util-linux's setpriv, as a user would run it: the same dance, then an exec.
  if (geteuid() != 0) GTEST_SKIP() << "changing user needs root";
  ExpectCleanExit(RunCommandAt(
      {"setpriv", "--reuid=daemon", "--regid=daemon", "--clear-groups", "true"}, 100, 20));
}

TEST(LifecycleTest, ChildrenOfUnderscoreForkExitAndLeaveTheParentsStreamWhole) {
  RunResult result = RunAt("lifecycle_fork_without_handlers", 10, 60, {"24"});
  ExpectCleanExit(result);  // otherwise: the number of children that hung in exit()
  ASSERT_EQ(result.processes.size(), 1u) << "a child's census went into the parent's stream";
  const ProcessReport& parent = result.processes[0];
  EXPECT_EQ(parent.stream_error, "");
  EXPECT_TRUE(parent.saw_final);
}

TEST(LifecycleTest, VforkChildExitDoesNotStopTheParentsReporting) {
  RunResult result = RunAt("lifecycle_vfork_exit", 100, 20);
  ExpectCleanExit(result);
  ASSERT_EQ(result.processes.size(), 1u);
  // 1.5 s of leaking after the child's exit(): about 15 censuses. No final one: the child's
  // exit() ran, and used up, the exit handlers on the parent's memory (the shim's among them),
  // so the parent's own exit runs none.
  EXPECT_GE(result.processes[0].census_count, 8u);
}

TEST(LifecycleTest, FinalCensusComesAfterLibraryDestructors) {
  RunResult result = RunAt("lifecycle_uses_fd_keeper", 100, 20);
  ExpectCleanExit(result);
  const ProcessReport& process = OnlyProcess(result);
  SiteTotals kept = TotalsAt(process, "fd_keeper_open", wire::Kind::kFds);
  EXPECT_EQ(kept.acquired, 50u);
  EXPECT_EQ(kept.live, 0) << "descriptors the library's destructor closed are reported open";
}

TEST(LifecycleTest, LowestFreeDescriptorIsNeverTaken) {
  RunResult result = RunAt("lifecycle_lowest_fd", 10, 30, {"3"});
  // The exit status counts the times open() did not return the number just closed.
  ExpectCleanExit(result, 0);
  ASSERT_EQ(result.processes.size(), 1u);
  EXPECT_GE(result.processes[0].census_count, 50u);
}

TEST(LifecycleTest, QuietWorkersLeavingWithUnderscoreExitAreHeardFrom) {
  RunResult result = RunAt("lifecycle_quiet_workers", 100, 20);
  ExpectCleanExit(result);
  EXPECT_EQ(result.processes.size(), 4u);
  for (const ProcessReport& process : result.processes) EXPECT_TRUE(process.saw_final);
}

TEST(LifecycleTest, ChildrenYoungerThanAnIntervalSendNothingAtExit) {
  RunResult result = RunAt("lifecycle_quick_fork_children", 1000, 20);
  ExpectCleanExit(result);
  EXPECT_EQ(result.processes.size(), 1u);
}

// Runs `program` with the shim preloaded and only fds 0-2 open, reporting to `socket_path`;
// returns its wait status.
int RunPreloaded(const std::string& program, const std::string& socket_path,
                 const std::string& argument = "") {
  const pid_t target = fork();
  if (target == 0) {
    close_range(3, ~0u, 0);
    const std::string preload = std::string("LD_PRELOAD=") + DW_SHIM_PATH;
    const std::string socket = "DRIFTWATCH_SOCKET=" + socket_path;
    char* environment[] = {const_cast<char*>(preload.c_str()), const_cast<char*>(socket.c_str()),
                           const_cast<char*>("DRIFTWATCH_INTERVAL_MS=50"), nullptr};
    const std::string path = Program(program);
    char* arguments[] = {const_cast<char*>(path.c_str()),
                         argument.empty() ? nullptr : const_cast<char*>(argument.c_str()), nullptr};
    execve(path.c_str(), arguments, environment);
    _exit(127);
  }
  int status = -1;
  waitpid(target, &status, 0);
  return status;
}

TEST(LifecycleTest, ShimHoldsNoLowDescriptorBeforeMain) {
  // No collector listens: the shim is as it is in any process it was preloaded into.
  const int status = RunPreloaded("lifecycle_first_fds", testing::TempDir() + "/nobody.sock");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the program's first descriptors were taken";
}

// A listener run by `nobody` in a directory anyone may write to, as an attacker's socket would
// be. It accepts until 3 s pass without a connection and exits 1 if it received any byte.
class UntrustedListener {
 public:
  bool Start() {
    if (mkdtemp(dir_) == nullptr || chmod(dir_, 01777) != 0) return false;
    path_ = std::string(dir_) + "/census.sock";
    int ready[2];
    if (pipe(ready) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) Serve(ready[1]);
    close(ready[1]);
    char byte;
    const bool started = read(ready[0], &byte, 1) == 1;
    close(ready[0]);
    return started;
  }
  const std::string& path() const { return path_; }
  // Waits for the listener: 0 if it received nothing.
  int BytesReceivedExitCode() {
    int status = -1;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    unlink(path_.c_str());
    rmdir(dir_);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }
  ~UntrustedListener() {
    if (pid_ > 0) BytesReceivedExitCode();
  }

 private:
  [[noreturn]] void Serve(int ready) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path_.c_str());
    if (bind(server, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) _exit(4);
    listen(server, 16);
    (void)!write(ready, "x", 1);
    size_t received = 0;
    pollfd wait{server, POLLIN, 0};
    while (poll(&wait, 1, 3000) > 0) {
      int connection = accept(server, nullptr, nullptr);
      char buffer[4096];
      ssize_t got;
      while ((got = read(connection, buffer, sizeof(buffer))) > 0) received += got;
      close(connection);
    }
    _exit(received > 0 ? 1 : 0);
  }

  char dir_[32] = "/tmp/dw-untrusted-XXXXXX";
  std::string path_;
  pid_t pid_ = -1;
};

// A listener run by another user, in a directory anyone may write to, as an attacker's socket
// would be: the shim of a root process connects, sees who listens, and sends nothing.
TEST(LifecycleTest, NothingIsSentToAnotherUsersCollector) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to run the listener as another user";
  UntrustedListener listener;
  ASSERT_TRUE(listener.Start());
  const std::string path = listener.path();
  // The refusal is said on the program's stderr, but only while that is still the stderr it
  // started with: this program points fd 2 at a log of its own at once, which must stay empty.
  const std::string log = testing::TempDir() + "/stderr_moved.log";
  int status = RunPreloaded("lifecycle_stderr_moved", path, log);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the shim wrote into the program's own log";
  EXPECT_EQ(listener.BytesReceivedExitCode(), 0)
      << "the shim sent its census to another user's socket";
}

// glibc honours LD_PRELOAD in a set-uid program only for a library named without a slash that
// sits in a system directory and is set-uid itself (as /etc/ld.so.preload entries may be): such
// a copy of the shim is installed for the test. The program runs as root for a user whose
// environment chose the socket: the shim must send nothing, even to that user's own listener.
TEST(LifecycleTest, SetUidProgramsStayDormant) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to make a set-uid program";
  const std::string library_name = "libdriftwatch-setuid-test.so";
  const std::string library = "/usr/lib/x86_64-linux-gnu/" + library_name;
  char dir[] = "/var/tmp/dw-setuid-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(chmod(dir, 0755), 0);
  const std::string program = std::string(dir) + "/setuid_probe";
  const std::string copy_library =
      "cp " + std::string(DW_SHIM_PATH) + " " + library + " && chmod 04755 " + library;
  const std::string copy_program = "cp " + Program("lifecycle_setuid_probe") + " " + program +
                                   " && chown 0:0 " + program + " && chmod 04755 " + program;
  ASSERT_EQ(std::system(copy_library.c_str()), 0);
  ASSERT_EQ(std::system(copy_program.c_str()), 0);
  UntrustedListener listener;
  ASSERT_TRUE(listener.Start());
  const pid_t target = fork();
  if (target == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(125);
    const std::string preload = "LD_PRELOAD=" + library_name;
    const std::string socket = "DRIFTWATCH_SOCKET=" + listener.path();
    char* environment[] = {const_cast<char*>(preload.c_str()), const_cast<char*>(socket.c_str()),
                           const_cast<char*>("DRIFTWATCH_INTERVAL_MS=50"), nullptr};
    char* arguments[] = {const_cast<char*>(program.c_str()), nullptr};
    execve(program.c_str(), arguments, environment);
    _exit(127);
  }
  int status = -1;
  waitpid(target, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the shim was not loaded: the test proves nothing";
  EXPECT_EQ(listener.BytesReceivedExitCode(), 0) << "a set-uid program sent its census";
  unlink(library.c_str());
  unlink(program.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace dw::report::e2e
