// Tests of RunUnderShim with a real fork/exec, a real socket and a real census stream: the fake
// census client stands in for the shim, an empty shared object is preloaded in its place.
#include "report/commands/run_command.h"

#include <signal.h>
#include <stdlib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "report/outputs/report_output.h"

namespace dw::report {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::SizeIs;

RunOptions FakeRun(std::vector<std::string> args) {
  RunOptions options;
  options.command = {FAKE_CENSUS_CLIENT, "--expect-preload", NOOP_SHIM};
  options.command.insert(options.command.end(), args.begin(), args.end());
  options.shim_path = NOOP_SHIM;
  options.interval_ms = 20;
  options.drain_grace_s = 2.0;
  return options;
}

TEST(RunUnderShimTest, FindsTheLeakWithExactFiguresAndSymbols) {
  absl::StatusOr<RunResult> result = RunUnderShim(FakeRun({"--censuses", "30"}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->child_exit.signaled);
  EXPECT_EQ(result->child_exit.code, 0) << "7 means LD_PRELOAD did not start with the shim";
  EXPECT_FALSE(result->child_failed);
  EXPECT_FALSE(result->ended_by_us);
  ASSERT_THAT(result->processes, SizeIs(1));
  const ProcessReport& process = result->processes[0];
  EXPECT_EQ(process.identity.pid, static_cast<uint32_t>(result->child_pid));
  EXPECT_THAT(process.identity.exe, EndsWith("/report_fake_census_client"));
  ASSERT_TRUE(process.exit.has_value());
  EXPECT_EQ(process.exit->code, 0);
  EXPECT_EQ(process.census_count, 30u);
  EXPECT_TRUE(process.saw_final);
  EXPECT_TRUE(process.stream_error.empty()) << process.stream_error;
  EXPECT_EQ(process.interval_ms, 20u);

  const auto leaks = FindSitesByFunction(process, "LeakHere");
  ASSERT_THAT(leaks, SizeIs(1));
  const SiteReport& leak = *leaks[0];
  EXPECT_EQ(leak.kind, wire::Kind::kHeap);
  EXPECT_EQ(leak.counters.acquired, 30u);
  EXPECT_EQ(leak.live, 30);
  EXPECT_EQ(leak.live_bytes, 30 * 1024);
  EXPECT_EQ(leak.finding.status, DriftStatus::kDrifting);
  EXPECT_GT(leak.finding.slope_per_hour, 0);
  ASSERT_FALSE(leak.frames.empty());
  EXPECT_EQ(leak.frames[leak.headline].function, "LeakHere");
  EXPECT_THAT(leak.frames[0].file, EndsWith("fake_census_client.cc"));
  EXPECT_GT(leak.frames[0].line, 0);

  const auto churn = FindSitesByFunction(process, "ChurnHere", wire::Kind::kHeap);
  ASSERT_THAT(churn, SizeIs(1));
  EXPECT_EQ(churn[0]->finding.status, DriftStatus::kSteady);
  const auto once = FindSitesByFunction(process, "OnceHere");
  ASSERT_THAT(once, SizeIs(1));
  EXPECT_EQ(once[0]->live_bytes, 4096);
  EXPECT_NE(once[0]->finding.status, DriftStatus::kDrifting);
  EXPECT_TRUE(FindSitesByFunction(process, "LeakHere", wire::Kind::kFds).empty());
  EXPECT_TRUE(FindSitesByFunction(process, "Leak").empty()) << "no prefix matching";

  EXPECT_EQ(process.heap_live_bytes, leak.live_bytes + churn[0]->live_bytes + 4096);
  EXPECT_EQ(process.totals.rss_bytes, (10u << 20) + 29 * 4096);
  EXPECT_EQ(result->verdict, Verdict::kDrift);
  EXPECT_EQ(ExitCodeFor(*result), 1);
  EXPECT_THAT(FindProcessesByExe(*result, "report_fake_census_client"), SizeIs(1));

  const std::string json = RenderVerdictJson(*result);
  EXPECT_THAT(json, HasSubstr(R"("schema":"driftwatch.verdict.v1")"));
  EXPECT_THAT(json, HasSubstr(R"("verdict":"drift")"));
  EXPECT_THAT(json, HasSubstr(R"("function":"LeakHere")"));
  EXPECT_THAT(json, HasSubstr(R"("exit":{"code":0})"));
  EXPECT_THAT(json, HasSubstr(R"("live_bytes":30720,)"));
}

TEST(RunUnderShimTest, DurationEndsTheCommandWithoutFailure) {
  RunOptions options = FakeRun({"--forever"});
  options.duration_s = 0.6;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->ended_by_us);
  EXPECT_FALSE(result->child_failed);
  EXPECT_NEAR(result->duration_s, 0.6, 0.5);
  ASSERT_THAT(result->processes, SizeIs(1));
  EXPECT_TRUE(result->processes[0].saw_final) << "the final census after SIGTERM is collected";
  EXPECT_GE(result->processes[0].census_count, 10u);
  EXPECT_EQ(ExitCodeFor(*result), 1);
}

TEST(RunUnderShimTest, StubbornCommandIsKilledAfterTheGrace) {
  RunOptions options;
  options.command = {"/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"};
  options.shim_path = NOOP_SHIM;
  options.duration_s = 0.3;
  options.kill_grace_s = 0.3;
  options.drain_grace_s = 0.2;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->child_exit.signaled);
  EXPECT_EQ(result->child_exit.signal, SIGKILL);
  EXPECT_FALSE(result->child_failed);
  EXPECT_EQ(result->verdict, Verdict::kInconclusive) << "no census: the shim was a no-op";
  EXPECT_EQ(ExitCodeFor(*result), kExitInconclusive) << "inconclusive must not look like success";
}

TEST(RunUnderShimTest, NonZeroExitIsAFailure) {
  absl::StatusOr<RunResult> result = RunUnderShim(FakeRun({"--censuses", "3", "--exit-code", "5"}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->child_exit.code, 5);
  EXPECT_TRUE(result->child_failed);
  EXPECT_EQ(ExitCodeFor(*result), 3);
  EXPECT_THAT(RenderVerdictJson(*result), HasSubstr(R"("exit":{"code":5})"));
}

TEST(RunUnderShimTest, CrashIsAFailure) {
  absl::StatusOr<RunResult> result = RunUnderShim(FakeRun({"--censuses", "3", "--crash"}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->child_exit.signaled);
  EXPECT_EQ(result->child_exit.signal, SIGABRT);
  EXPECT_EQ(ExitCodeFor(*result), 3);
  EXPECT_THAT(RenderVerdictJson(*result), HasSubstr(R"("exit":{"signal":6})"));
}

TEST(RunUnderShimTest, CollectsChildProcesses) {
  absl::StatusOr<RunResult> result = RunUnderShim(FakeRun({"--censuses", "12", "--fork"}));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_THAT(result->processes, SizeIs(2));
  const ProcessReport* parent = nullptr;
  const ProcessReport* child = nullptr;
  for (const ProcessReport& p : result->processes) {
    (p.identity.pid == static_cast<uint32_t>(result->child_pid) ? parent : child) = &p;
  }
  ASSERT_NE(parent, nullptr);
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->identity.ppid, parent->identity.pid);
  EXPECT_TRUE(parent->exit.has_value());
  EXPECT_FALSE(child->exit.has_value()) << "only the direct child's exit status is known";
  const auto parent_leaks = FindSitesByFunction(*parent, "LeakHere");
  const auto child_leaks = FindSitesByFunction(*child, "LeakHere");
  ASSERT_THAT(parent_leaks, SizeIs(1));
  ASSERT_THAT(child_leaks, SizeIs(1));
  EXPECT_EQ(parent_leaks[0]->live_bytes, 12 * 1024);
  EXPECT_EQ(child_leaks[0]->live_bytes, 12 * 2048);
  EXPECT_THAT(RenderVerdictJson(*result), HasSubstr(R"("exit":null)"));
}

TEST(RunUnderShimTest, CorruptStreamDoesNotBreakTheRun) {
  absl::StatusOr<RunResult> result = RunUnderShim(FakeRun({"--garbage"}));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->processes.empty());
  EXPECT_EQ(result->verdict, Verdict::kInconclusive);
  EXPECT_EQ(ExitCodeFor(*result), kExitInconclusive);
}

TEST(RunUnderShimTest, PrependsTheShimToLdPreloadAndSetsTheEnvironment) {
  setenv("LD_PRELOAD", NOOP_SHIM, 1);
  RunOptions options;
  options.command = {
      "/bin/sh", "-c",
      "test \"$LD_PRELOAD\" = \"" NOOP_SHIM ":" NOOP_SHIM
      "\" && test \"$DRIFTWATCH_INTERVAL_MS\" = 250 && test -S \"$DRIFTWATCH_SOCKET\""};
  options.shim_path = NOOP_SHIM;
  options.interval_ms = 250;
  options.drain_grace_s = 0.1;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  unsetenv("LD_PRELOAD");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->child_exit.code, 0);
}

TEST(RunUnderShimTest, SetUpErrors) {
  RunOptions options;
  options.shim_path = NOOP_SHIM;
  EXPECT_FALSE(RunUnderShim(options).ok()) << "no command";
  options.command = {"driftwatch-no-such-command-here"};
  absl::StatusOr<RunResult> missing = RunUnderShim(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("not found"));
  options.command = {"/etc/passwd"};
  EXPECT_FALSE(RunUnderShim(options).ok()) << "not executable";
  options.command = {"/bin/true"};
  options.duration_s = -1;
  EXPECT_FALSE(RunUnderShim(options).ok()) << "bad duration";
}

TEST(RunUnderShimTest, StaticOrUntracedCommandIsInconclusive) {
  RunOptions options;
  options.command = {"/bin/true"};
  options.shim_path = NOOP_SHIM;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->verdict, Verdict::kInconclusive);
  EXPECT_THAT(RenderVerdictJson(*result), HasSubstr(R"("verdict":"inconclusive","processes":[])"));
}

}  // namespace
}  // namespace dw::report
