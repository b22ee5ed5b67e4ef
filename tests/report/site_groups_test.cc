// Tests of the site-group stage (report/site_groups.h): stacks that share an allocation site
// are one group whose verdict comes from their summed series, with the largest stacks listed;
// and the reports and the run verdict use the groups.
#include "report/analysis/site_groups.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "report/analysis/process_analysis.h"
#include "report/outputs/report_output.h"

namespace dw::report {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Frame Named(std::string function, std::string file, int line) {
  Frame frame;
  frame.function = std::move(function);
  frame.file = std::move(file);
  frame.line = line;
  frame.module = "/srv/parser";
  return frame;
}

Frame Unnamed(uint64_t offset) {
  Frame frame;
  frame.module = "/srv/parser";
  frame.module_offset = offset;
  frame.address = 0x5000'0000 + offset;
  return frame;
}

// A heap site whose stack is `frames` (headline 0).
SiteReport HeapSite(uint32_t id, std::vector<Frame> frames) {
  SiteReport site;
  site.kind = wire::Kind::kHeap;
  site.site_id = id;
  site.frames = std::move(frames);
  return site;
}

// Fills `process.series` with `censuses` censuses, one per second: site i holds
// `bytes(i, n)` live bytes at census n (nothing before the first census where it is > 0, as a
// stack the shim had not defined yet), and the latest figures into the sites.
void FillSeries(ProcessReport& process, int censuses,
                const std::function<int64_t(uint32_t, int)>& bytes) {
  for (int n = 0; n < censuses; ++n) {
    Census census;
    census.sequence = static_cast<uint64_t>(n);
    census.monotonic_ns = static_cast<uint64_t>(n) * 1'000'000'000;
    for (SiteReport& site : process.sites) {
      const int64_t live = bytes(site.site_id, n);
      if (live <= 0 && !process.series.Find({site.kind, site.site_id})) continue;
      SiteCounters counters{.acquired = static_cast<uint64_t>(live / 64),
                            .acquired_bytes = static_cast<uint64_t>(live)};
      census.counters[static_cast<size_t>(site.kind)][site.site_id] = counters;
      site.counters = counters;
      site.live = counters.Live();
      site.live_bytes = counters.LiveBytes();
    }
    process.series.Append(census);
  }
}

const SiteReport* GroupOf(const ProcessReport& process, uint32_t site_id) {
  for (const SiteReport& group : process.groups) {
    for (const GroupMember& member : group.members) {
      if (member.site_id == site_id) return &group;
    }
  }
  return nullptr;
}

TEST(SiteGroupsTest, KeysAreTheHeadlineFrameOrItsModuleOffset) {
  SiteReport a = HeapSite(1, {Named("parse_expr", "parser.c", 88), Named("parse", "p.c", 1)});
  SiteReport b = HeapSite(2, {Named("parse_expr", "parser.c", 88), Named("main", "p.c", 9)});
  SiteReport c = HeapSite(3, {Named("parse_expr", "parser.c", 90)});
  SiteReport d = HeapSite(4, {Unnamed(0x40)});
  SiteReport e = HeapSite(5, {Unnamed(0x40), Named("main", "p.c", 9)});
  SiteReport f = HeapSite(6, {});
  EXPECT_EQ(GroupKey(a), GroupKey(b));
  EXPECT_NE(GroupKey(a), GroupKey(c));
  EXPECT_EQ(GroupKey(d), GroupKey(e));
  EXPECT_NE(GroupKey(d), GroupKey(a));
  EXPECT_THAT(GroupKey(f), HasSubstr("site 6"));
  // The headline, not the innermost frame, names the site.
  SiteReport g = HeapSite(7, {Unnamed(0x99), Named("parse_expr", "parser.c", 88)});
  g.headline = 1;
  EXPECT_EQ(GroupKey(g), GroupKey(a));
  // Another kind at the same line is another group.
  SiteReport h = a;
  h.kind = wire::Kind::kFds;
  EXPECT_NE(GroupKey(h), GroupKey(a));
}

TEST(SiteGroupsTest, SumIsAlignedOnTime) {
  ProcessReport process;
  process.sites = {HeapSite(1, {}), HeapSite(2, {})};
  // Site 1 from census 0 on, site 2 only from census 3 on.
  FillSeries(process, 6, [](uint32_t id, int n) -> int64_t {
    return id == 1 ? 100 + n : (n >= 3 ? 1000 * n : 0);
  });
  const uint32_t ids[] = {1, 2};
  const SummedSeries sum = SumSeries(process.series, wire::Kind::kHeap, ids);
  EXPECT_THAT(sum.times, ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_THAT(sum.values, ElementsAre(100, 101, 102, 3103, 4104, 5105));
  const uint32_t late[] = {2};
  const SummedSeries alone = SumSeries(process.series, wire::Kind::kHeap, late);
  EXPECT_THAT(alone.times, ElementsAre(3, 4, 5));
  EXPECT_THAT(alone.values, ElementsAre(3000, 4000, 5000));
}

// A recursive parser: every census a new stack through the same allocation line keeps one
// 4 KiB node. Each stack alone is a flat series (steady); together they grow steadily.
ProcessReport RecursiveParser(uint32_t stacks, int censuses) {
  ProcessReport process;
  for (uint32_t id = 1; id <= stacks; ++id) {
    process.sites.push_back(HeapSite(
        id, {Named("new_node", "parser.c", 88), Named("parse_expr", "parser.c", 200 + id)}));
  }
  // A steady site elsewhere.
  process.sites.push_back(HeapSite(stacks + 1, {Named("load_config", "config.c", 12)}));
  FillSeries(process, censuses, [&](uint32_t id, int n) -> int64_t {
    if (id == stacks + 1) return 65536;
    // Stack id is first used at census (id - 1) % censuses.
    const int born = static_cast<int>((id - 1) % static_cast<uint32_t>(censuses));
    return n >= born ? 4096 : 0;
  });
  return process;
}

TEST(SiteGroupsTest, ManyStacksOfOneSiteAreOneDriftingGroup) {
  ProcessReport process = RecursiveParser(60, 60);
  RobustDriftAnalyzer analyzer;
  BuildSiteGroups(process, analyzer, {});
  ASSERT_EQ(process.groups.size(), 2u);
  const SiteReport* parser = GroupOf(process, 1);
  ASSERT_NE(parser, nullptr);
  EXPECT_EQ(parser->members.size(), 60u);
  EXPECT_EQ(parser->finding.status, DriftStatus::kDrifting);
  EXPECT_EQ(parser->live_bytes, 60 * 4096);
  EXPECT_EQ(parser->frames[0].line, 88);
  // Every stack on its own is flat after its one allocation.
  size_t analysed = 0;
  for (const GroupMember& member : parser->members) {
    if (!member.analysed) continue;
    ++analysed;
    EXPECT_NE(process.sites[member.site_index].finding.status, DriftStatus::kDrifting);
  }
  EXPECT_EQ(analysed, kAnalysedMembers);
  EXPECT_EQ(GroupOf(process, 61)->finding.status, DriftStatus::kSteady);

  RunResult result;
  result.processes.push_back(std::move(process));
  result.processes[0].heap_total_finding.enough_samples = true;
  result.verdict = ComputeVerdict(result.processes);
  EXPECT_EQ(result.verdict, Verdict::kDrift);
  const std::vector<const SiteReport*> findings = Findings(result.processes[0]);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0]->members.size(), 60u);

  const std::string json = RenderVerdictJson(result);
  EXPECT_THAT(json, HasSubstr("\"stack_count\":60,\"stacks\":[{\"site_id\":"));
  EXPECT_THAT(json, HasSubstr("\"stack_count\":61,\"site_count\":2"));
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  PrintTerminalReport(result, out);
  std::fclose(out);
  const std::string report(text, size);
  free(text);
  EXPECT_THAT(report, HasSubstr("DRIFT: 1 site growing"));
  EXPECT_THAT(report, HasSubstr("60 stacks allocate here"));
  EXPECT_THAT(report, HasSubstr("new_node (parser.c:88)"));
}

TEST(SiteGroupsTest, LargestGrowthIsListedFirst) {
  ProcessReport process;
  for (uint32_t id = 1; id <= 8; ++id) {
    process.sites.push_back(
        HeapSite(id, {Named("alloc_buf", "buf.c", 10), Named("caller", "c.c", int(id))}));
  }
  // Stack 6 leaks 4 KiB a census; the others hold a constant amount, stack 2 the most.
  FillSeries(process, 40, [](uint32_t id, int n) -> int64_t {
    if (id == 6) return 4096 * (n + 1);
    return id == 2 ? 1 << 20 : 1024;
  });
  RobustDriftAnalyzer analyzer;
  BuildSiteGroups(process, analyzer, {});
  ASSERT_EQ(process.groups.size(), 1u);
  const SiteReport& group = process.groups[0];
  EXPECT_EQ(group.finding.status, DriftStatus::kDrifting);
  ASSERT_EQ(group.members.size(), 8u);
  EXPECT_EQ(group.members[0].site_id, 6u);
  EXPECT_GT(group.members[0].growth, 100'000);
  // The group is named by its largest stack.
  EXPECT_EQ(group.site_id, 6u);
  EXPECT_EQ(group.frames[1].line, 6);
  // It is analysed on its own: drifting; the biggest but flat one is steady.
  EXPECT_EQ(process.sites[group.members[0].site_index].finding.status, DriftStatus::kDrifting);
  const auto stack2 = std::find_if(group.members.begin(), group.members.end(),
                                   [](const GroupMember& m) { return m.site_id == 2; });
  ASSERT_TRUE(stack2->analysed);
  EXPECT_EQ(process.sites[stack2->site_index].finding.status, DriftStatus::kSteady);
  EXPECT_GT(stack2->share, 0.8);
}

// One stack leaks 200 bytes a census; eleven others at the same line churn by up to 1 MiB, so
// it is not among the largest by growth. The sum's noise hides the leak from its trend test,
// but the leaking stack, the most steadily rising, drifts on its own: the group takes its
// finding.
TEST(SiteGroupsTest, ALeakHiddenByItsSitesChurnIsStillFound) {
  ProcessReport process;
  for (uint32_t id = 1; id <= 12; ++id) {
    process.sites.push_back(
        HeapSite(id, {Named("alloc_buf", "buf.c", 10), Named("caller", "c.c", int(id))}));
  }
  uint64_t state = 42;
  FillSeries(process, 60, [&](uint32_t id, int n) -> int64_t {
    if (id == 1) return 4096 + 200 * n;
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return 1 + static_cast<int64_t>((state >> 33) % (1 << 20));
  });
  RobustDriftAnalyzer analyzer;
  const SummedSeries sum = SumSeries(process.series, wire::Kind::kHeap,
                                     std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  ASSERT_NE(analyzer.Analyze(sum.times, sum.values).status, DriftStatus::kDrifting);
  BuildSiteGroups(process, analyzer, {});
  ASSERT_EQ(process.groups.size(), 1u);
  const SiteReport& group = process.groups[0];
  EXPECT_EQ(group.finding.status, DriftStatus::kDrifting);
  EXPECT_TRUE(group.finding.judged_on_stack);
  const auto leak = std::find_if(group.members.begin(), group.members.end(),
                                 [](const GroupMember& m) { return m.site_id == 1; });
  ASSERT_TRUE(leak->analysed);
  EXPECT_EQ(process.sites[leak->site_index].finding.status, DriftStatus::kDrifting);
  EXPECT_NEAR(group.finding.slope_per_hour, 200 * 3600, 1);
}

TEST(SiteGroupsTest, BudgetAppliesToTheGroupsSum) {
  ProcessReport process = RecursiveParser(60, 60);
  RobustDriftAnalyzer analyzer;
  // 4 KiB/s is 14.4 MiB/h: a budget of 20 MiB/h accepts the group's growth.
  DriftBudgets budgets;
  budgets.per_hour[static_cast<size_t>(wire::Kind::kHeap)] = 20.0 * 1024 * 1024;
  BuildSiteGroups(process, analyzer, budgets);
  const SiteReport* parser = GroupOf(process, 1);
  ASSERT_NE(parser, nullptr);
  EXPECT_EQ(parser->finding.status, DriftStatus::kSteady);
  EXPECT_TRUE(parser->finding.within_budget);
}

// 100k distinct stacks of one line: one group, five analyses. Prints the time taken (not
// asserted: timings belong in bench/).
TEST(SiteGroupsTest, HundredThousandStacksAreOneGroup) {
  constexpr uint32_t kStacks = 100'000;
  ProcessReport process = RecursiveParser(kStacks, 30);
  RobustDriftAnalyzer analyzer;
  const auto start = std::chrono::steady_clock::now();
  BuildSiteGroups(process, analyzer, {});
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("BuildSiteGroups over %u stacks: %zu groups in %.0f ms\n", kStacks + 1,
              process.groups.size(), ms);
  ASSERT_EQ(process.groups.size(), 2u);
  const SiteReport* parser = GroupOf(process, 1);
  ASSERT_NE(parser, nullptr);
  EXPECT_EQ(parser->members.size(), kStacks);
  EXPECT_EQ(parser->finding.status, DriftStatus::kDrifting);
  size_t analysed = 0;
  for (const GroupMember& member : parser->members) analysed += member.analysed ? 1 : 0;
  EXPECT_EQ(analysed, kAnalysedMembers);
}

}  // namespace
}  // namespace dw::report
