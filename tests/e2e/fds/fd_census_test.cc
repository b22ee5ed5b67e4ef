// Exact fd census figures from real programs under the real shim, read through the collector:
// every interposed fd function, per calling function, with the descriptor's type.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "preload/wire_format.h"
#include "tests/e2e/e2e_support.h"

namespace dw::report {
namespace {

RunResult RunProgram(const std::string& name, std::optional<double> duration_s = std::nullopt) {
  return e2e::RunProgram(name, {}, duration_s);
}

// The program's own process (popen and system children report too), with its final census.
const ProcessReport& ProgramProcess(const RunResult& result, const std::string& name) {
  static const ProcessReport kEmpty;
  std::vector<const ProcessReport*> found = FindProcessesByExe(result, name);
  EXPECT_EQ(found.size(), 1u) << name;
  if (found.empty()) return kEmpty;
  EXPECT_TRUE(found[0]->saw_final) << "no final census";
  return *found[0];
}

using Totals = e2e::SiteTotals;

Totals FdsAt(const ProcessReport& process, const std::string& function) {
  return e2e::TotalsAt(process, function, wire::Kind::kFds);
}

struct Expectation {
  const char* name;  // use_<name> releases everything, leak_<name> keeps one
  uint32_t type;     // the FdType bit of the leaked descriptor
};

constexpr Expectation kFunctions[] = {
    {"open", wire::kFdFile},
    {"open64", wire::kFdFile},
    {"openat", wire::kFdDirectory},
    {"openat64", wire::kFdFile},
    {"creat", wire::kFdFile},
    {"creat64", wire::kFdFile},
    {"open_2", wire::kFdFile},
    {"open64_2", wire::kFdCharDevice},
    {"openat_2", wire::kFdFile},
    {"openat64_2", wire::kFdFile},
    {"mkstemp", wire::kFdFile},
    {"mkstemp64", wire::kFdFile},
    {"mkostemp", wire::kFdFile},
    {"mkostemp64", wire::kFdFile},
    {"mkstemps", wire::kFdFile},
    {"mkstemps64", wire::kFdFile},
    {"mkostemps", wire::kFdFile},
    {"mkostemps64", wire::kFdFile},
    {"shm_open", wire::kFdFile},
    {"posix_openpt", wire::kFdCharDevice},
    {"getpt", wire::kFdCharDevice},
    {"socket", wire::kFdSocketInet},
    {"pidfd_open", wire::kFdPidfd},
    {"epoll_create", wire::kFdEpoll},
    {"epoll_create1", wire::kFdEpoll},
    {"eventfd", wire::kFdEventfd},
    {"signalfd", wire::kFdSignalfd},
    {"timerfd_create", wire::kFdTimerfd},
    {"inotify_init", wire::kFdInotify},
    {"inotify_init1", wire::kFdInotify},
    {"fanotify_init", wire::kFdFanotify},
    {"memfd_create", wire::kFdMemfd},
    {"socketpair", wire::kFdSocketUnix},
    {"pipe", wire::kFdPipe},
    {"pipe2", wire::kFdPipe},
    {"accept", wire::kFdSocketInet},
    {"accept4", wire::kFdSocketInet},
    {"recvmsg", wire::kFdEventfd},
    {"recvmmsg", wire::kFdEventfd},
    {"pidfd_getfd", wire::kFdPipe},
    {"dup", wire::kFdSocketUnix},
    {"fcntl_dupfd", wire::kFdSocketUnix},
    {"fcntl_dupfd_cloexec", wire::kFdSocketUnix},
    {"fcntl64", wire::kFdSocketUnix},
    {"dup2", wire::kFdSocketUnix},
    {"dup3", wire::kFdSocketUnix},
    {"fopen", wire::kFdFile},
    {"fopen64", wire::kFdFile},
    {"fdopen", wire::kFdPipe},
    {"freopen", wire::kFdFile},
    {"freopen64", wire::kFdFile},
    {"tmpfile", wire::kFdFile},
    {"tmpfile64", wire::kFdFile},
    {"popen", wire::kFdPipe},
    {"opendir", wire::kFdDirectory},
    {"fdopendir", wire::kFdDirectory},
};

class FdCensusTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { result_ = new RunResult(RunProgram("e2e_every_fd_function")); }
  static void TearDownTestSuite() { delete result_; }
  static const ProcessReport& Process() {
    return ProgramProcess(*result_, "e2e_every_fd_function");
  }
  static RunResult* result_;
};
RunResult* FdCensusTest::result_ = nullptr;

TEST_F(FdCensusTest, EveryFunctionBalancesWhereReleased) {
  for (const Expectation& expected : kFunctions) {
    const std::string user = std::string("use_") + expected.name;
    Totals at = FdsAt(Process(), user);
    if (at.acquired == 0 && std::string(expected.name) == "fanotify_init") continue;  // no cap
    EXPECT_GT(at.acquired, 0u) << user << " was never seen";
    EXPECT_EQ(at.live, 0) << user;
    EXPECT_EQ(at.acquired, at.released) << user;
  }
}

TEST_F(FdCensusTest, EveryLeakAtItsFunctionWithItsType) {
  for (const Expectation& expected : kFunctions) {
    const std::string leaker = std::string("leak_") + expected.name;
    Totals at = FdsAt(Process(), leaker);
    if (at.acquired == 0 && std::string(expected.name) == "fanotify_init") continue;
    EXPECT_EQ(at.live, 1) << leaker;
    EXPECT_NE(at.detail & expected.type, 0u)
        << leaker << ": type bits " << std::hex << at.detail << ", expected " << expected.type;
  }
}

TEST_F(FdCensusTest, ImplicitClosesAndRanges) {
  // dup2/dup3 onto an open number closed it: the target's site balances.
  Totals target = FdsAt(Process(), "dup_target");
  EXPECT_GT(target.acquired, 0u);
  Totals in_use = FdsAt(Process(), "use_dup2");
  EXPECT_EQ(in_use.live, 0);
  // freopen closed the descriptor fopen made in freopen_source.
  Totals reopened = FdsAt(Process(), "freopen_source");
  EXPECT_EQ(reopened.acquired, 4u);
  EXPECT_EQ(reopened.released, 4u);
  // close_range and closefrom released what they closed; CLOSE_RANGE_CLOEXEC closed nothing.
  Totals range = FdsAt(Process(), "use_close_range");
  EXPECT_EQ(range.acquired, 6u);  // 3 opened at dup_target, 3 copies at the high numbers
  EXPECT_EQ(range.live, 0);
  Totals from = FdsAt(Process(), "use_closefrom");
  EXPECT_EQ(from.acquired, 6u);
  EXPECT_EQ(from.live, 0);
  Totals cloexec = FdsAt(Process(), "leak_close_range_cloexec");
  EXPECT_EQ(cloexec.live, 1);
  EXPECT_NE(cloexec.detail & wire::kFdCharDevice, 0u);
  // fdopen and fdopendir adopt: the descriptor stays with the call that made it.
  EXPECT_EQ(FdsAt(Process(), "make_fdopen").acquired, 0u);
  EXPECT_EQ(FdsAt(Process(), "fdopen_source").live, 1);  // leak_fdopen's read end
}

TEST_F(FdCensusTest, FailuresAreNeverRecorded) {
  EXPECT_EQ(FdsAt(Process(), "fail_everything").acquired, 0u);
  EXPECT_EQ(FdsAt(Process(), "fail_everything").released, 0u);
}

TEST(FdCensusMillionTest, FopenFcloseMillionTimesLeavesNothingLive) {
  RunResult result = RunProgram("e2e_fopen_million");
  const ProcessReport& process = ProgramProcess(result, "e2e_fopen_million");
  Totals at = FdsAt(process, "open_and_close_config");
  EXPECT_EQ(at.acquired, 1000000u);
  EXPECT_EQ(at.released, 1000000u);
  EXPECT_EQ(at.live, 0);
  EXPECT_EQ(at.detail, wire::kFdFile);
}

// The leak programs, judged by the collector as `driftwatch run` would (fd_run_verdict.sh
// checks the same through the command line and its JSON).
struct LeakProgram {
  const char* program;
  const char* function;
  uint32_t type;
};

class FdLeakTest : public testing::TestWithParam<LeakProgram> {};

TEST_P(FdLeakTest, DriftsAtTheLeakingFunction) {
  const LeakProgram& leak = GetParam();
  RunResult result = RunProgram(leak.program, 6.0);
  const ProcessReport& process = ProgramProcess(result, leak.program);
  bool drifting = false;
  for (const SiteReport* site : FindSitesByFunction(process, leak.function, wire::Kind::kFds)) {
    drifting |= site->finding.status == DriftStatus::kDrifting;
    EXPECT_NE(site->counters.detail & leak.type, 0u) << leak.function;
  }
  EXPECT_TRUE(drifting) << leak.function << " not found drifting";
  EXPECT_EQ(result.verdict, Verdict::kDrift);
}

INSTANTIATE_TEST_SUITE_P(
    Programs, FdLeakTest,
    testing::Values(LeakProgram{"e2e_leak_subprocess_pipe", "run_helper", wire::kFdPipe},
                    LeakProgram{"e2e_leak_socket_early_return", "probe_endpoint",
                                wire::kFdSocketInet},
                    LeakProgram{"e2e_leak_fopen_file", "read_status", wire::kFdFile},
                    LeakProgram{"e2e_leak_timerfds", "arm_request_timeout", wire::kFdTimerfd}),
    [](const testing::TestParamInfo<LeakProgram>& info) {
      return std::string(info.param.function);
    });

TEST(FdSteadyTest, ChurnOfEveryKindIsSteady) {
  RunResult result = RunProgram("e2e_steady_fd_churn", 6.0);
  const ProcessReport& process = ProgramProcess(result, "e2e_steady_fd_churn");
  for (const SiteReport& site : process.sites) {
    EXPECT_NE(site.finding.status, DriftStatus::kDrifting)
        << KindName(site.kind) << " site " << site.site_id << " drifts, live " << site.live;
  }
  EXPECT_EQ(result.verdict, Verdict::kSteady);
  uint64_t churned = 0;
  for (const char* function : {"churn_files", "churn_ipc", "churn_anonymous"}) {
    churned += FdsAt(process, function).acquired;
  }
  EXPECT_GT(churned, 10000u);
}

}  // namespace
}  // namespace dw::report
