// Tests of the reports for every resource kind: hand-built census streams with fds, threads,
// timers, Limits and ThreadStates go through the decoder, the series, BuildProcessReports and
// the analyzer, then out as verdict JSON and as the terminal table.
#include "report/outputs/report_output.h"

#include <stdio.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "report/analysis/process_analysis.h"
#include "report/decode/census_stream.h"
#include "tests/report/census_stream_builder.h"

namespace dw::report {
namespace {

using testing::CountCounter;
using testing::Counter;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::StreamBuilder;
using testing::ThreadState;

constexpr int kCensuses = 30;

// Sites: 1 fds leaking sockets, 2 threads leaking (all asleep in a futex), 3 timers leaking,
// 4 fds churning files, 5 heap leaking, 6 threads steady without a ThreadStates entry.
std::string EveryKindStream(bool with_limits = true) {
  StreamBuilder b;
  b.Hello(4242, 1, "/srv/server", 1000);
  for (int i = 0; i < kCensuses; ++i) {
    const uint64_t n = static_cast<uint64_t>(i) + 1;
    b.Begin(i, static_cast<uint64_t>(i) * 1'000'000'000, 64 << 20, 10 + i, 3 + i);
    if (with_limits) {
      wire::Limits limits{};
      limits.nofile_soft = 1024;
      limits.nofile_hard = 524288;
      limits.pids_max = 4915;
      limits.threads_max = 126865;
      limits.memory_total_bytes = uint64_t{8} << 30;
      b.Limits(limits);
    }
    if (i == 0) {
      for (uint32_t site = 1; site <= 6; ++site) b.Site(site, {0x1000 * site, 0x1000 * site + 8});
    }
    b.Counters(wire::Kind::kFds, {CountCounter(1, n, 0, wire::kFdSocketInet),
                                  CountCounter(4, n * 5, n * 5 - n % 3, wire::kFdFile)});
    b.Counters(wire::Kind::kThreads, {CountCounter(2, n, 0), CountCounter(6, 2, 0)});
    b.Counters(wire::Kind::kTimers,
               {CountCounter(3, n, 0, wire::kTimerSignal | wire::kTimerThread)});
    b.Counters(wire::Kind::kHeap, {Counter(5, n, 0, n * 4096, 0)});
    wire::ThreadSiteState state =
        ThreadState(2, 0, static_cast<uint32_t>(n), 312'000, static_cast<uint32_t>(n));
    b.ThreadStates({{state, "futex_wait_queue"}});
    b.End(i, i + 1 == kCensuses ? wire::kCensusFinal : 0);
  }
  return b.Take();
}

RunResult BuildResult(const std::string& stream) {
  ConnectionRecord record = testing::RecordFromStream(stream);
  EXPECT_EQ(record.stream_error, "");
  std::vector<ConnectionRecord> records;
  records.push_back(std::move(record));
  OlsDriftAnalyzer analyzer;
  Symbolizer symbolizer;
  RunResult result;
  result.command = {"/srv/server"};
  result.interval_ms = 1000;
  result.duration_s = kCensuses;
  result.processes = BuildProcessReports(std::move(records), analyzer, symbolizer);
  result.verdict = ComputeVerdict(result.processes);
  return result;
}

std::string TerminalReport(const RunResult& result) {
  // open_memstream: PrintTerminalReport writes to a FILE*.
  char* buffer = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&buffer, &size);
  PrintTerminalReport(result, out);
  fclose(out);
  std::string text(buffer, size);
  free(buffer);
  return text;
}

TEST(ReportOutputTest, EveryKindIsAnalysedOnTheRightSeries) {
  const RunResult result = BuildResult(EveryKindStream());
  ASSERT_EQ(result.processes.size(), 1u);
  const ProcessReport& process = result.processes[0];
  EXPECT_EQ(result.verdict, Verdict::kDrift);

  const SiteReport* sockets = process.FindSite(wire::Kind::kFds, 1);
  ASSERT_NE(sockets, nullptr);
  EXPECT_EQ(sockets->live, kCensuses);
  EXPECT_EQ(sockets->live_bytes, 0);
  EXPECT_EQ(sockets->detail, wire::kFdSocketInet);
  EXPECT_THAT(sockets->fd_types, ElementsAre("socket/inet"));
  EXPECT_TRUE(sockets->timer_notify.empty());
  EXPECT_FALSE(sockets->thread_state.has_value());
  EXPECT_STREQ(sockets->unit, "count");
  // One more socket per second, analysed on the live count (the live bytes are all 0).
  EXPECT_EQ(sockets->finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(sockets->finding.slope_per_hour, 3600, 1);

  const SiteReport* files = process.FindSite(wire::Kind::kFds, 4);
  ASSERT_NE(files, nullptr);
  EXPECT_THAT(files->fd_types, ElementsAre("file"));
  EXPECT_EQ(files->finding.status, DriftStatus::kSteady) << "bounded churn of open files";

  const SiteReport* workers = process.FindSite(wire::Kind::kThreads, 2);
  ASSERT_NE(workers, nullptr);
  EXPECT_EQ(workers->finding.status, DriftStatus::kDrifting);
  ASSERT_TRUE(workers->thread_state.has_value());
  EXPECT_EQ(workers->thread_state->sleeping, static_cast<uint32_t>(kCensuses));
  EXPECT_EQ(workers->thread_state->idle_over_minute, static_cast<uint32_t>(kCensuses));
  EXPECT_EQ(workers->thread_state->longest_idle_ms, 312'000u);
  EXPECT_EQ(workers->thread_state->wchan, "futex_wait_queue");
  EXPECT_TRUE(workers->fd_types.empty());
  const SiteReport* pool = process.FindSite(wire::Kind::kThreads, 6);
  ASSERT_NE(pool, nullptr);
  EXPECT_FALSE(pool->thread_state.has_value()) << "no ThreadStates entry for this site";
  EXPECT_EQ(pool->finding.status, DriftStatus::kSteady);

  const SiteReport* timers = process.FindSite(wire::Kind::kTimers, 3);
  ASSERT_NE(timers, nullptr);
  EXPECT_EQ(timers->finding.status, DriftStatus::kDrifting);
  EXPECT_THAT(timers->timer_notify, ElementsAre("signal", "thread"));
  EXPECT_EQ(process.timers_live, kCensuses);

  const SiteReport* heap = process.FindSite(wire::Kind::kHeap, 5);
  ASSERT_NE(heap, nullptr);
  EXPECT_STREQ(heap->unit, "bytes");
  EXPECT_NEAR(heap->finding.slope_per_hour, 4096.0 * 3600, 10);

  ASSERT_TRUE(process.limits.has_value());
  EXPECT_EQ(process.limits->nofile_soft, 1024u);
  EXPECT_EQ(process.limits->pids_max, 4915u);

  // Counted kinds first (they run into hard limits), heap last.
  const std::vector<const SiteReport*> findings = Findings(process);
  ASSERT_EQ(findings.size(), 4u);
  EXPECT_EQ(findings.back()->kind, wire::Kind::kHeap);
}

TEST(ReportOutputTest, JsonCarriesKindSpecificFields) {
  const std::string json = RenderVerdictJson(BuildResult(EveryKindStream()));
  EXPECT_THAT(json, HasSubstr(R"("schema":"driftwatch.verdict.v1")"));
  EXPECT_THAT(json, HasSubstr(R"("totals":{"rss_bytes":67108864,"fds":39,"threads":32,)"
                              R"("heap_live_bytes":122880,"timers_live":30},)"));
  EXPECT_THAT(json, HasSubstr(R"("limits":{"nofile_soft":1024,"nofile_hard":524288,)"
                              R"("nproc_soft":null,"pids_max":4915,"threads_max":126865,)"
                              R"("memory_limit_bytes":null,"memory_total_bytes":8589934592,)"
                              R"("address_space_bytes":null})"));
  EXPECT_THAT(json, HasSubstr(R"("kind":"fds","status":"drifting","live":30,"live_bytes":0,)"));
  EXPECT_THAT(json, HasSubstr(R"("unit":"count","fd_types":["socket/inet"],"frames":[)"));
  EXPECT_THAT(json, HasSubstr(R"("unit":"count","timer_notify":["signal","thread"],"frames":[)"));
  EXPECT_THAT(json, HasSubstr(R"("kind":"threads","status":"drifting")"));
  EXPECT_THAT(json, HasSubstr(R"("thread_states":{"running":0,"sleeping":30,"disk_sleeping":0,)"
                              R"("stopped":0,"exited_unjoined":0,"longest_idle_s":312,)"
                              R"("idle_over_minute":30,"wchan":"futex_wait_queue"},"frames":[)"));
  EXPECT_THAT(json, HasSubstr(R"("kind":"heap","status":"drifting")"));
  EXPECT_THAT(json, HasSubstr(R"("unit":"bytes","frames":[)")) << "no kind fields on heap";
  EXPECT_THAT(json, Not(HasSubstr(R"("file"])"))) << "steady sites are not findings";
}

TEST(ReportOutputTest, JsonWithoutLimitsOrStates) {
  std::string stream = EveryKindStream(/*with_limits=*/false);
  const std::string json = RenderVerdictJson(BuildResult(stream));
  EXPECT_THAT(json, HasSubstr(R"("limits":null)"));

  // A threads finding whose latest census had no ThreadStates entry: thread_states is null.
  StreamBuilder b;
  b.Hello(1, 0, "/x");
  for (int i = 0; i < kCensuses; ++i) {
    b.Begin(i, static_cast<uint64_t>(i) * 1'000'000'000);
    if (i == 0) b.Site(1, {0x10});
    b.Counters(wire::Kind::kThreads, {CountCounter(1, i + 1, 0)}).End(i);
  }
  const std::string threads_json = RenderVerdictJson(BuildResult(b.Take()));
  EXPECT_THAT(threads_json, HasSubstr(R"("kind":"threads","status":"drifting")"));
  EXPECT_THAT(threads_json, HasSubstr(R"("unit":"count","thread_states":null,"frames":[)"));
}

TEST(ReportOutputTest, TerminalShowsTypesStatesAndLimits) {
  const std::string text = TerminalReport(BuildResult(EveryKindStream()));
  EXPECT_THAT(text, HasSubstr("DRIFT: 4 sites growing"));
  EXPECT_THAT(text, HasSubstr("timers 30"));
  EXPECT_THAT(text, HasSubstr("limits: nofile 1024, pids.max 4915, threads-max 126865, "
                              "memory 8.0 GiB"));
  EXPECT_THAT(text, HasSubstr("KIND    STATUS             SLOPE   CONF        LIVE   TO LIMIT  "
                              "DETAIL         WHERE"));
  // This result comes from OlsDriftAnalyzer, which reports no confidence.
  EXPECT_THAT(text, HasSubstr("fds     drifting         +3.6k/h   0.0%          30     16m25s  "
                              "socket/inet"));
  EXPECT_THAT(text, HasSubstr("threads drifting         +3.6k/h   0.0%          30      1h21m  "
                              "sleeping"));
  EXPECT_THAT(text, HasSubstr("timers  drifting         +3.6k/h   0.0%          30          -"));
  EXPECT_THAT(text, HasSubstr("30 threads, all sleeping in futex_wait_queue; all idle over a "
                              "minute, longest 5m12s"));
  EXPECT_THAT(text, HasSubstr("notify=signal,thread"));
  EXPECT_THAT(text, HasSubstr("30 blocks"));
  // 1024 - 39 open fds at 3600 more per hour: 16 minutes.
  EXPECT_THAT(text, HasSubstr("reaches RLIMIT_NOFILE (1024) in ~16m25s at this rate"));
  EXPECT_THAT(text, HasSubstr("reaches pids.max (4915) in ~1h21m at this rate"));
}

TEST(ReportOutputTest, Formats) {
  EXPECT_EQ(FormatCount(3.45), "3.5");
  EXPECT_EQ(FormatCount(720), "720");
  EXPECT_EQ(FormatCount(1234), "1.2k");
  EXPECT_EQ(FormatCount(999'999), "1.0M");
  EXPECT_EQ(FormatCount(-2500), "-2.5k");
  EXPECT_EQ(FormatSlope(1234, "count"), "+1.2k/h");
  EXPECT_EQ(FormatSlope(3.5, "count"), "+3.5/h");
  EXPECT_EQ(FormatSlope(2048, "bytes"), "+2.0 KiB/h");
  EXPECT_EQ(FormatDuration(850), "850ms");
  EXPECT_EQ(FormatDuration(42'000), "42s");
  EXPECT_EQ(FormatDuration(312'000), "5m12s");
  EXPECT_EQ(FormatDuration(3 * 3600'000 + 4 * 60'000), "3h04m");
  EXPECT_EQ(FormatDuration(2 * 86400'000ull + 5 * 3600'000), "2d05h");
}

TEST(ReportOutputTest, DescribesThreadStates) {
  ThreadSiteState blocked{.sleeping = 40,
                          .longest_idle_ms = 312'000,
                          .idle_over_minute = 40,
                          .wchan = "futex_wait_queue"};
  EXPECT_EQ(DescribeThreadState(blocked),
            "40 threads, all sleeping in futex_wait_queue; all idle over a minute, longest 5m12s");
  ThreadSiteState mixed{.running = 2,
                        .sleeping = 5,
                        .exited_unjoined = 3,
                        .longest_idle_ms = 90'000,
                        .idle_over_minute = 3,
                        .wchan = "ep_poll"};
  EXPECT_EQ(DescribeThreadState(mixed),
            "10 threads: 2 running, 5 sleeping in ep_poll, 3 exited but never joined; 3 idle "
            "over a minute, longest 1m30s");
  ThreadSiteState zombies{.exited_unjoined = 7, .wchan = ""};
  EXPECT_EQ(DescribeThreadState(zombies), "7 threads, all exited but never joined");
  ThreadSiteState one{.disk_sleeping = 1, .longest_idle_ms = 5'000, .wchan = "io_schedule"};
  EXPECT_EQ(DescribeThreadState(one),
            "1 thread, in uninterruptible sleep in io_schedule; longest idle 5s");

  SiteReport site;
  site.kind = wire::Kind::kThreads;
  EXPECT_EQ(FindingDetail(site), "-");
  site.thread_state = mixed;
  EXPECT_EQ(FindingDetail(site), "mixed");
  site.thread_state = zombies;
  EXPECT_EQ(FindingDetail(site), "exited_unjoined");
  site.kind = wire::Kind::kFds;
  site.fd_types = {"socket/unix", "pipe"};
  EXPECT_EQ(FindingDetail(site), "socket/unix,pipe");
}

Frame At(const char* function, const char* module) {
  Frame frame;
  frame.function = function;
  frame.module = module;
  return frame;
}

TEST(ReportOutputTest, HeadlineIsTheUsersFunction) {
  // fopen() in libc, called by the user's function.
  EXPECT_EQ(HeadlineFrame({At("fopen", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
                           At("load_config", "/srv/server"), At("main", "/srv/server")}),
            1u);
  // pthread_create from libc or the old libpthread, behind std::thread instantiated in the
  // user's binary.
  EXPECT_EQ(HeadlineFrame({At("pthread_create", "/lib/x86_64-linux-gnu/libpthread.so.0"),
                           At("pthread_create@@GLIBC_2.34", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
                           At("std::thread::_M_start_thread(...)", "/usr/lib/libstdc++.so.6"),
                           At("std::thread::thread<void (&)(int), int&, void>(void (&)(int), int&)",
                              "/srv/server"),
                           At("spawn_worker(int)", "/srv/server")}),
            4u);
  // An allocator's operator new (tcmalloc, jemalloc and mimalloc ship their own).
  EXPECT_EQ(HeadlineFrame({At("tc_new", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
                           At("je_malloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
                           At("mi_new", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"),
                           At("Cache::Insert", "/srv/server")}),
            3u);
  // timer_create in the old librt.
  EXPECT_EQ(HeadlineFrame({At("timer_create", "/lib/x86_64-linux-gnu/librt.so.1"),
                           At("arm_request_timeout", "/srv/server")}),
            1u);
  // Only library templates outside the runtime: the first of them.
  EXPECT_EQ(HeadlineFrame({At("malloc", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
                           At("std::vector<int>::push_back(int)", "/srv/server")}),
            1u);
  // Only runtime frames (a thread libc started for itself): frame 0.
  EXPECT_EQ(HeadlineFrame({At("start_thread", "/usr/lib/x86_64-linux-gnu/libc.so.6")}), 0u);
  EXPECT_EQ(HeadlineFrame({}), 0u);
}

}  // namespace
}  // namespace dw::report
