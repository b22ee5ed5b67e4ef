// Tests of the analysis as the reports see it: budgets, projections to a limit, the RSS
// reconciliation and per-process findings, from hand-built census streams through the decoder,
// the series, BuildProcessReports with the default RobustDriftAnalyzer, and out as JSON.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "report/analysis/drift_analysis.h"
#include "report/analysis/process_analysis.h"
#include "report/decode/census_stream.h"
#include "report/outputs/report_output.h"
#include "tests/report/census_stream_builder.h"

namespace dw::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::StreamBuilder;

constexpr int kCensuses = 60;

struct ProcessSpec {
  uint32_t pid = 100;
  uint32_t ppid = 1;
  std::function<uint64_t(uint64_t)> heap_bytes = {};  // live bytes of heap site 1 at census n
  std::function<uint64_t(uint64_t)> fds = {};         // live count of fd site 2
  std::function<uint64_t(uint64_t)> rss = {};         // process RSS
  uint64_t open_fds = 40;                             // the process's own fd total
  bool limits = true;
};

ConnectionRecord Record(const ProcessSpec& spec) {
  StreamBuilder b;
  b.Hello(spec.pid, spec.ppid, "/srv/worker", 1000);
  for (int i = 0; i < kCensuses; ++i) {
    const uint64_t n = static_cast<uint64_t>(i) + 1;
    b.Begin(i, static_cast<uint64_t>(i) * 1'000'000'000, spec.rss ? spec.rss(n) : 64 << 20,
            static_cast<uint32_t>(spec.open_fds), 4);
    if (spec.limits) {
      wire::Limits limits{};
      limits.nofile_soft = 4096;
      limits.memory_total_bytes = uint64_t{8} << 30;
      b.Limits(limits);
    }
    if (i == 0) {
      b.Site(1, {0x1000, 0x1008});
      b.Site(2, {0x2000, 0x2008});
    }
    b.Counters(wire::Kind::kHeap,
               {testing::Counter(1, n, 0, spec.heap_bytes ? spec.heap_bytes(n) : 4096, 0)});
    b.Counters(wire::Kind::kFds,
               {testing::CountCounter(2, spec.fds ? spec.fds(n) : 3, 0, wire::kFdSocketInet)});
    b.End(i, i + 1 == kCensuses ? wire::kCensusFinal : 0);
  }
  ConnectionRecord record = testing::RecordFromStream(b.Take());
  EXPECT_EQ(record.stream_error, "");
  return record;
}

RunResult Build(const std::vector<ProcessSpec>& specs, const DriftBudgets& budgets = {}) {
  std::vector<ConnectionRecord> records;
  for (const ProcessSpec& spec : specs) records.push_back(Record(spec));
  RobustDriftAnalyzer analyzer;
  Symbolizer symbolizer;
  RunResult result;
  result.command = {"/srv/worker"};
  result.interval_ms = 1000;
  result.duration_s = kCensuses;
  result.processes = BuildProcessReports(std::move(records), analyzer, symbolizer, budgets);
  result.verdict = ComputeVerdict(result.processes);
  return result;
}

// 4 KiB per census at one census per second: 14.1 MiB/h.
uint64_t HeapLeak(uint64_t n) { return n * 4096; }

TEST(AnalysisReportTest, GrowthWithinBudgetIsSteadyButKeepsItsSlope) {
  absl::StatusOr<DriftBudgets> budgets = ParseBudgets("heap=20MiB/h");
  ASSERT_TRUE(budgets.ok());
  const RunResult result = Build({{.heap_bytes = HeapLeak}}, *budgets);
  EXPECT_EQ(result.verdict, Verdict::kSteady);
  const SiteReport* site = result.processes[0].FindSite(wire::Kind::kHeap, 1);
  ASSERT_NE(site, nullptr);
  EXPECT_EQ(site->finding.status, DriftStatus::kSteady);
  EXPECT_TRUE(site->finding.within_budget);
  EXPECT_NEAR(site->finding.slope_per_hour, 4096.0 * 3600, 1);
  const std::string json = RenderVerdictJson(result);
  EXPECT_THAT(json,
              HasSubstr(R"("findings":[],"within_budget":[{"kind":"heap","status":"steady")"));
  EXPECT_THAT(json, HasSubstr(R"("detail":"heap: +14.1 MiB/h, within the budget of 20.0 MiB/h")"));
  EXPECT_THAT(json, HasSubstr(R"("budget_per_hour":20971520)"));
}

TEST(AnalysisReportTest, GrowthOverBudgetStillDrifts) {
  absl::StatusOr<DriftBudgets> budgets = ParseBudgets("heap=10MiB/h,fds=0/h");
  ASSERT_TRUE(budgets.ok());
  const RunResult result = Build({{.heap_bytes = HeapLeak}}, *budgets);
  EXPECT_EQ(result.verdict, Verdict::kDrift);
  const SiteReport* site = result.processes[0].FindSite(wire::Kind::kHeap, 1);
  ASSERT_NE(site, nullptr);
  EXPECT_EQ(site->finding.status, DriftStatus::kDrifting);
  EXPECT_FALSE(site->finding.within_budget);
}

TEST(AnalysisReportTest, FindingCarriesConfidenceLimitAndDetail) {
  // One socket leaked per census next to 40 open descriptors, RLIMIT_NOFILE 4096.
  const RunResult result = Build({{.fds = [](uint64_t n) { return n; }, .open_fds = 96}});
  const SiteReport* site = result.processes[0].FindSite(wire::Kind::kFds, 2);
  ASSERT_NE(site, nullptr);
  ASSERT_EQ(site->finding.status, DriftStatus::kDrifting);
  EXPECT_GT(site->finding.confidence, 0.999);
  ASSERT_TRUE(site->limit.has_value());
  EXPECT_STREQ(site->limit->name, "RLIMIT_NOFILE");
  EXPECT_EQ(site->limit->value, 4096u);
  // (4096 - 96) / 3600 per hour = 4000 s.
  ASSERT_TRUE(site->limit->time_to_limit_s.has_value());
  EXPECT_NEAR(*site->limit->time_to_limit_s, 4000, 1);
  const std::string json = RenderVerdictJson(result);
  EXPECT_THAT(json,
              HasSubstr(R"("confidence":1,"time_to_limit_s":4000,)"
                        R"("limit":{"name":"RLIMIT_NOFILE","value":4096},)"
                        R"("detail":"fds: +3.6k/h, RLIMIT_NOFILE 4096 reached in 67 min",)"
                        R"("judged_on":"sum","estimated":false,"stack_count":1,"stacks":[]})"));
}

TEST(AnalysisReportTest, ProjectToLimitMath) {
  CensusTotals totals;
  totals.fd_count = 96;
  totals.thread_count = 10;
  totals.rss_bytes = uint64_t{1} << 30;
  ProcessLimits limits;
  limits.nofile_soft = 4096;
  limits.nproc_soft = 5000;
  limits.pids_max = 1000;
  limits.threads_max = 100000;
  limits.memory_total_bytes = uint64_t{16} << 30;
  limits.address_space_bytes = uint64_t{2} << 30;  // ignored: it bounds virtual size, not RSS

  // +144/day = 6/h: 4000 more descriptors in 666.7 h = 27.8 days.
  auto fds = ProjectToLimit(wire::Kind::kFds, totals, limits, 6.0);
  ASSERT_TRUE(fds.has_value());
  EXPECT_NEAR(*fds->time_to_limit_s, 4000.0 / 6 * 3600, 1e-6);
  EXPECT_EQ(FormatTimeToLimit(*fds->time_to_limit_s), "27.8 days");

  // Threads: the tightest of RLIMIT_NPROC, pids.max and threads-max.
  auto threads = ProjectToLimit(wire::Kind::kThreads, totals, limits, 99.0);
  ASSERT_TRUE(threads.has_value());
  EXPECT_STREQ(threads->name, "pids.max");
  EXPECT_NEAR(*threads->time_to_limit_s, 990.0 / 99 * 3600, 1e-6);

  // Memory: MemTotal without a cgroup limit, the cgroup limit when there is one, against RSS.
  auto heap = ProjectToLimit(wire::Kind::kHeap, totals, limits, 1024.0 * 1024 * 1024);
  ASSERT_TRUE(heap.has_value());
  EXPECT_STREQ(heap->name, "MemTotal");
  EXPECT_NEAR(*heap->time_to_limit_s, 15 * 3600, 1e-6);
  limits.memory_limit_bytes = uint64_t{3} << 30;
  heap = ProjectToLimit(wire::Kind::kHeap, totals, limits, 1024.0 * 1024 * 1024);
  EXPECT_STREQ(heap->name, "memory.max");
  EXPECT_NEAR(*heap->time_to_limit_s, 2 * 3600, 1e-6);

  // Timers: no limit is sent. No growth or a limit already reached: no time.
  EXPECT_FALSE(ProjectToLimit(wire::Kind::kTimers, totals, limits, 10).has_value());
  EXPECT_FALSE(ProjectToLimit(wire::Kind::kFds, totals, limits, 0)->time_to_limit_s.has_value());
  totals.fd_count = 5000;
  EXPECT_FALSE(ProjectToLimit(wire::Kind::kFds, totals, limits, 6)->time_to_limit_s.has_value());
  EXPECT_FALSE(ProjectToLimit(wire::Kind::kFds, totals, std::nullopt, 6).has_value());
}

TEST(AnalysisReportTest, RssGrowingWithoutTheHeapIsFlagged) {
  // RSS +1 MiB per census (an mmap leak, or thread stacks), tracked heap flat.
  const RunResult result =
      Build({{.rss = [](uint64_t n) { return (uint64_t{64} << 20) + (n << 20); }}});
  const ProcessReport& process = result.processes[0];
  ASSERT_TRUE(process.rss_finding.has_value());
  EXPECT_EQ(process.rss_finding->status, DriftStatus::kDrifting);
  EXPECT_NEAR(process.rss_finding->slope_per_hour, 3600.0 * (1 << 20), 1);
  const std::string json = RenderVerdictJson(result);
  EXPECT_THAT(json, HasSubstr(R"("rss_finding":{"status":"drifting","slope_per_hour":)"));
  EXPECT_THAT(json, HasSubstr("RSS grows +3.5 GiB/h while the tracked heap is flat: "
                              "fragmentation or memory outside malloc"));
  // Not a site finding: the verdict stays with the sites.
  EXPECT_EQ(result.verdict, Verdict::kSteady);
}

TEST(AnalysisReportTest, RssGrowingWithTheHeapIsNotFlagged) {
  const RunResult result =
      Build({{.heap_bytes = [](uint64_t n) { return n << 20; },
              .rss = [](uint64_t n) { return (uint64_t{64} << 20) + (n << 20); }}});
  EXPECT_FALSE(result.processes[0].rss_finding.has_value());
  EXPECT_THAT(RenderVerdictJson(result), HasSubstr(R"("rss_finding":null)"));
}

TEST(AnalysisReportTest, OneLeakingWorkerAmongSteadySiblings) {
  std::vector<ProcessSpec> specs;
  for (uint32_t pid = 200; pid < 204; ++pid) {
    specs.push_back({.pid = pid, .ppid = 100, .heap_bytes = [](uint64_t n) {
                       return 100'000 + 2048 * (n % 7);  // churn
                     }});
  }
  specs[2].heap_bytes = HeapLeak;
  const RunResult result = Build(specs);
  EXPECT_EQ(result.verdict, Verdict::kDrift);
  for (const ProcessReport& process : result.processes) {
    SCOPED_TRACE(process.identity.pid);
    EXPECT_EQ(Findings(process).size(), process.identity.pid == 202 ? 1u : 0u);
  }
}

// One allocation site reached through `stacks` callers: stack i is {0x1000, its own caller}.
// Each stack's live bytes grow at its own rate, so the group has members analysed on their own
// and members only summed.
RunResult ManyCallersOfOneSite(uint32_t stacks) {
  StreamBuilder b;
  b.Hello(100, 1, "/srv/parser", 1000);
  constexpr int kCount = 12;
  constexpr uint32_t kChunk = 1000;
  for (int i = 0; i < kCount; ++i) {
    const uint64_t n = static_cast<uint64_t>(i) + 1;
    b.Begin(i, static_cast<uint64_t>(i) * 1'000'000'000);
    for (uint32_t id = 1; i == 0 && id <= stacks; ++id) b.Site(id, {0x1000, 0x10000 + 16 * id});
    for (uint32_t first = 1; first <= stacks; first += kChunk) {
      std::vector<wire::SiteCounter> counters;
      for (uint32_t id = first; id < first + kChunk && id <= stacks; ++id) {
        counters.push_back(testing::Counter(id, n, 0, n * 64 * (id % 13 + 1), 0));
      }
      b.Counters(wire::Kind::kHeap, counters);
    }
    b.End(i, i + 1 == kCount ? wire::kCensusFinal : 0);
  }
  std::vector<ConnectionRecord> records;
  records.push_back(testing::RecordFromStream(b.Take()));
  EXPECT_EQ(records[0].stream_error, "");
  RobustDriftAnalyzer analyzer;
  Symbolizer symbolizer;
  RunResult result;
  result.processes = BuildProcessReports(std::move(records), analyzer, symbolizer);
  return result;
}

// Stacks per frame count: {frames of the group's own stack, of its analysed members, of the
// others}.
struct StackDepths {
  size_t group = 0;
  std::vector<size_t> analysed, others;
};
StackDepths Depths(const ProcessReport& process) {
  StackDepths depths;
  EXPECT_EQ(process.groups.size(), 1u);
  if (process.groups.empty()) return depths;
  const SiteReport& group = process.groups[0];
  depths.group = group.frames.size();
  for (const GroupMember& member : group.members) {
    const SiteReport& site = process.sites[member.site_index];
    EXPECT_EQ(site.headline, 0u);
    (member.analysed ? depths.analysed : depths.others).push_back(site.frames.size());
  }
  return depths;
}

// Beyond kFullStacksUpTo stacks, the stacks no output prints are symbolised only up to their
// headline frame (what grouping needs): a whole stack each cost ~5 KB, 1.3 GB at 150k stacks.
// What the outputs print keeps every frame.
TEST(AnalysisReportTest, ManyStacksSymboliseOnlyWhatIsPrinted) {
  const RunResult result = ManyCallersOfOneSite(kFullStacksUpTo + 500);
  ASSERT_EQ(result.processes.size(), 1u);
  const StackDepths depths = Depths(result.processes[0]);
  EXPECT_EQ(depths.group, 2u);
  EXPECT_FALSE(depths.analysed.empty());
  EXPECT_THAT(depths.analysed, ::testing::Each(2u));
  EXPECT_EQ(depths.others.size(), kFullStacksUpTo + 500 - depths.analysed.size());
  EXPECT_THAT(depths.others, ::testing::Each(1u));
  // The printed stacks carry their callers into the JSON.
  EXPECT_THAT(RenderVerdictJson(result), ::testing::ContainsRegex(R"("address":"0x1[0-9a-f]{4}")"));
}

// Up to kFullStacksUpTo stacks, every stack keeps all its frames (FindSitesByFunction searches
// every caller).
TEST(AnalysisReportTest, FewStacksKeepWholeStacks) {
  const RunResult result = ManyCallersOfOneSite(50);
  ASSERT_EQ(result.processes.size(), 1u);
  const StackDepths depths = Depths(result.processes[0]);
  EXPECT_EQ(depths.group, 2u);
  EXPECT_THAT(depths.analysed, ::testing::Each(2u));
  EXPECT_THAT(depths.others, ::testing::Each(2u));
}

// This process's file-backed mappings, as the shim would list them.
std::vector<testing::TestModule> SelfModules() {
  std::vector<testing::TestModule> modules;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    std::istringstream in(line);
    std::string range, perms, offset, device, inode, path;
    in >> range >> perms >> offset >> device >> inode >> path;
    if (!path.starts_with("/")) continue;
    const size_t dash = range.find('-');
    modules.push_back({.start = std::stoull(range.substr(0, dash), nullptr, 16),
                       .end = std::stoull(range.substr(dash + 1), nullptr, 16),
                       .file_offset = std::stoull(offset, nullptr, 16),
                       .path = path});
  }
  return modules;
}

// Two sites of this process, each called from libc (getpid stands for __libc_start_main): site 1
// steady, site 2 leaking. Returns the report and how many images' DWARF the symbolizer read.
std::pair<RunResult, size_t> SitesCalledFromLibc() {
  const uint64_t own = reinterpret_cast<uint64_t>(&SelfModules) + 1;
  const uint64_t other = reinterpret_cast<uint64_t>(&SitesCalledFromLibc) + 1;
  const uint64_t libc = reinterpret_cast<uint64_t>(&getpid) + 1;
  StreamBuilder b;
  b.Hello(100, 1, "/srv/parser", 1000);
  for (int i = 0; i < 12; ++i) {
    const uint64_t n = static_cast<uint64_t>(i) + 1;
    b.Begin(i, static_cast<uint64_t>(i) * 1'000'000'000);
    if (i == 0) b.Modules(SelfModules()).Site(1, {own, libc}).Site(2, {other, libc});
    b.Counters(wire::Kind::kHeap,
               {testing::Counter(1, 1, 0, 4096, 0), testing::Counter(2, n, 0, n * 65536, 0)});
    b.End(i, i == 11 ? wire::kCensusFinal : 0);
  }
  std::vector<ConnectionRecord> records;
  records.push_back(testing::RecordFromStream(b.Take()));
  RobustDriftAnalyzer analyzer;
  Symbolizer symbolizer;
  RunResult result;
  result.processes = BuildProcessReports(std::move(records), analyzer, symbolizer);
  return {std::move(result), symbolizer.dwarf_loads()};
}

// Grouping needs libc's frames by name only; the stacks the outputs print have libc's lines
// (libc6-dbg's DWARF is read for them only: decompressing it cost 20-40 ms a run).
TEST(AnalysisReportTest, RuntimeFramesAreReadInFullOnlyWhenPrinted) {
  auto [result, dwarf_loads] = SitesCalledFromLibc();
  ASSERT_EQ(result.processes.size(), 1u);
  const ProcessReport& process = result.processes[0];
  ASSERT_EQ(process.sites.size(), 2u);
  const SiteReport& steady = process.sites[0];
  ASSERT_EQ(steady.frames.size(), 2u);
  EXPECT_EQ(steady.headline, 0u);
  EXPECT_TRUE(steady.frames[1].names_only);
  EXPECT_THAT(steady.frames[1].function, HasSubstr("getpid"));
  const std::vector<const SiteReport*> findings = Findings(process);
  ASSERT_EQ(findings.size(), 1u);
  const SiteReport& leak = *findings[0];
  EXPECT_EQ(leak.site_id, 2u);
  ASSERT_GE(leak.frames.size(), 2u);
  EXPECT_FALSE(leak.frames.back().names_only);
  EXPECT_THAT(leak.frames.back().function, HasSubstr("getpid"));
  // This binary's and libc's (libc's once, for the printed stack).
  EXPECT_EQ(dwarf_loads, 2u);
}

// Without a printed stack, libc's DWARF is never read: a steady run pays only for this binary's.
TEST(AnalysisReportTest, SteadySitesReadNoRuntimeDwarf) {
  StreamBuilder b;
  const uint64_t own = reinterpret_cast<uint64_t>(&SelfModules) + 1;
  const uint64_t libc = reinterpret_cast<uint64_t>(&getpid) + 1;
  b.Hello(100, 1, "/srv/parser", 1000);
  for (int i = 0; i < 12; ++i) {
    b.Begin(i, static_cast<uint64_t>(i) * 1'000'000'000);
    if (i == 0) b.Modules(SelfModules()).Site(1, {own, libc});
    b.Counters(wire::Kind::kHeap, {testing::Counter(1, 1, 0, 4096, 0)});
    b.End(i, i == 11 ? wire::kCensusFinal : 0);
  }
  std::vector<ConnectionRecord> records;
  records.push_back(testing::RecordFromStream(b.Take()));
  RobustDriftAnalyzer analyzer;
  Symbolizer symbolizer;
  const std::vector<ProcessReport> processes =
      BuildProcessReports(std::move(records), analyzer, symbolizer);
  ASSERT_EQ(processes.size(), 1u);
  ASSERT_TRUE(Findings(processes[0]).empty());
  EXPECT_EQ(symbolizer.dwarf_loads(), 1u);
}

}  // namespace
}  // namespace dw::report
