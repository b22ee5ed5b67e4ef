// Exact census figures from real programs under the real shim, read through the collector.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/e2e/e2e_support.h"

namespace dw::report {
namespace {

using e2e::LineOf;
using e2e::OnlyProcess;
using e2e::RunProgram;
using Totals = e2e::SiteTotals;

Totals HeapAt(const ProcessReport& process, const std::string& function) {
  return e2e::TotalsAt(process, function, wire::Kind::kHeap);
}

TEST(CensusTest, ExactCountsAtTheLeakingFunctionOnly) {
  RunResult result = RunProgram("e2e_exact_counts");
  const ProcessReport& process = OnlyProcess(result);
  Totals leak = HeapAt(process, "leak_here");
  EXPECT_EQ(leak.live, 600);
  EXPECT_EQ(leak.live_bytes, 28800);
  EXPECT_EQ(leak.acquired, 1000u);
  EXPECT_EQ(leak.released, 400u);
  Totals churn = HeapAt(process, "churn_and_free");
  EXPECT_EQ(churn.acquired, 500u);
  EXPECT_EQ(churn.live, 0);
  EXPECT_EQ(churn.live_bytes, 0);
  // Nothing else of this program stays live but stdio's output buffer.
  int64_t elsewhere = 0;
  for (const SiteReport& site : process.sites) {
    bool at_leak = false;
    for (const Frame& frame : site.frames) at_leak |= frame.function == "leak_here";
    if (site.kind == wire::Kind::kHeap && !at_leak) elsewhere += site.live_bytes;
  }
  EXPECT_LE(elsewhere, 4096) << "live heap outside leak_here";
}

TEST(CensusTest, EveryInterposedFunction) {
  RunResult result = RunProgram("e2e_every_function");
  const ProcessReport& process = OnlyProcess(result);
  struct Expectation {
    const char* function;
    int64_t live;
    int64_t live_bytes;
  };
  const Expectation expectations[] = {
      {"use_malloc", 3, 300},        {"use_calloc", 4, 800},         {"use_memalign", 1, 300},
      {"use_aligned_alloc", 2, 512}, {"use_posix_memalign", 1, 500}, {"use_valloc", 1, 1000},
      {"use_pvalloc", 1, 5000},      {"use_reallocarray", 1, 300},   {"realloc_to_zero", 0, 0},
      {"realloc_failure", 1, 77},    {"freed_everything", 0, 0},
  };
  for (const Expectation& expected : expectations) {
    Totals at = HeapAt(process, expected.function);
    EXPECT_EQ(at.live, expected.live) << expected.function;
    EXPECT_EQ(at.live_bytes, expected.live_bytes) << expected.function;
    EXPECT_GT(at.acquired, 0u) << expected.function << " was never seen";
  }
  // realloc moves ownership: the 10-byte block from start_block is released, and the 700-byte
  // result is attributed to use_realloc's own call.
  Totals moved = HeapAt(process, "use_realloc");
  EXPECT_EQ(moved.live_bytes, 700);
  Totals start = HeapAt(process, "start_block");
  EXPECT_EQ(start.acquired, 1u);
  EXPECT_EQ(start.released, 1u);
  EXPECT_EQ(HeapAt(process, "realloc_to_zero").released, 1u);
}

TEST(CensusTest, AllocationsFromOtherThreads) {
  RunResult result = RunProgram("e2e_thread_allocs");
  const ProcessReport& process = OnlyProcess(result);
  Totals at = HeapAt(process, "worker_alloc");
  EXPECT_EQ(at.acquired, 10000u);
  EXPECT_EQ(at.released, 5000u + 400u);  // half on the worker, 100 per worker from main
  EXPECT_EQ(at.live, 4600);
  EXPECT_EQ(at.live_bytes, 4600 * 32);
}

TEST(CensusTest, AllocationsBeforeTheFirstCensus) {
  RunResult result = RunProgram("e2e_early_allocs");
  const ProcessReport& process = OnlyProcess(result);
  Totals at = HeapAt(process, "allocate_in_constructor");
  EXPECT_EQ(at.live, 20);
  EXPECT_EQ(at.live_bytes, 20 * 256);
}

TEST(CensusTest, AttributionThroughOperatorNewAndContainers) {
  // The program is built without frame pointers and so is libstdc++: the stack must still
  // reach the user's function through operator new and the container internals.
  RunResult result = RunProgram("e2e_cxx_containers");
  const ProcessReport& process = OnlyProcess(result);
  // Globals are destroyed before the final census, so acquisitions are what is asserted.
  EXPECT_EQ(HeapAt(process, "make_widgets").acquired, 100u + 8u);  // widgets + vector growth
  Totals map = HeapAt(process, "fill_map");
  EXPECT_GE(map.acquired, 400u);  // a node and a string per entry, plus bucket arrays
  Totals vector = HeapAt(process, "grow_vector");
  EXPECT_EQ(vector.acquired, 15u);  // 1, 2, 4, ... 16384 elements
  for (const SiteReport* site : FindSitesByFunction(process, "make_widgets", wire::Kind::kHeap)) {
    ASSERT_FALSE(site->frames.empty());
    EXPECT_NE(site->frames[0].function.find("operator new"), std::string::npos)
        << "frame 0 should be operator new, is " << site->frames[0].function;
  }
}

TEST(CensusTest, UnorderedMapNodesAreNamedAtTheUsersFunctionAndLine) {
  // -O2 -g, no frame pointers: emplace is inlined into fill_map, and libstdc++'s operator new
  // has no frame pointer either. The headline must still be fill_map, at the emplace line.
  RunResult result = RunProgram("e2e_cxx_containers");
  const ProcessReport& process = OnlyProcess(result);
  const int map_line = LineOf("cxx_containers.cc", "// MAP LINE");
  ASSERT_GT(map_line, 0);
  int sites = 0;
  for (const SiteReport* site : FindSitesByFunction(process, "fill_map", wire::Kind::kHeap)) {
    ++sites;
    const Frame& headline = site->frames.at(site->headline);
    EXPECT_TRUE(headline.function.starts_with("fill_map")) << headline.Describe();
    EXPECT_TRUE(headline.file.ends_with("cxx_containers.cc")) << headline.file;
    EXPECT_EQ(headline.line, map_line) << headline.Describe();
  }
  EXPECT_GE(sites, 2) << "nodes, buckets and strings should be separate sites";
}

TEST(CensusTest, CensusSocketIsOutOfTheProgramsReach) {
  // The program exits 4 if it saw a socket among its descriptors, 1 if census bytes reached
  // the file it put on every number after closing them all.
  std::string file = testing::TempDir() + "/stolen_fd_file";
  RunResult result = RunProgram("e2e_socket_stolen", {file});
  // The connection outlives the program's close_range: one process, one stream.
  ASSERT_EQ(result.processes.size(), 1u);
  const ProcessReport& after = result.processes.back();
  EXPECT_TRUE(after.saw_final);
  Totals at = HeapAt(after, "allocate_after_theft");
  EXPECT_EQ(at.live, 10);
  EXPECT_EQ(at.live_bytes, 40000);
}

TEST(CensusTest, ForkChildrenReportSeparately) {
  RunResult result = RunProgram("e2e_fork_children");
  ASSERT_FALSE(result.child_failed) << "a child failed (unshare in a child made multithreaded?)";
  int children = 0;
  int64_t leaked_blocks = 0;
  for (const ProcessReport& process : result.processes) {
    if (process.identity.pid == static_cast<uint32_t>(result.child_pid)) continue;
    Totals at = HeapAt(process, "child_leak");
    if (at.acquired == 0) continue;
    EXPECT_EQ(process.identity.ppid, static_cast<uint32_t>(result.child_pid));
    EXPECT_EQ(at.live_bytes, at.live * 200);
    leaked_blocks += at.live;
    ++children;
  }
  EXPECT_EQ(children, 3);
  EXPECT_EQ(leaked_blocks, 50 + 100 + 150);
}

TEST(CensusTest, VforkChildLeavesTheParentsTablesAlone) {
  RunResult result = RunProgram("e2e_vfork_child");
  const ProcessReport* parent = nullptr;
  for (const ProcessReport& process : result.processes) {
    if (process.identity.pid == static_cast<uint32_t>(result.child_pid)) parent = &process;
  }
  ASSERT_NE(parent, nullptr);
  EXPECT_TRUE(parent->saw_final);
  EXPECT_EQ(HeapAt(*parent, "child_alloc").acquired, 0u) << "a vfork child's malloc was recorded";
  EXPECT_EQ(HeapAt(*parent, "parent_alloc").live, 2);
}

TEST(CensusTest, InlinedLeakingFunctionIsNamedAsInlinedWithItsLine) {
  RunResult result = RunProgram("e2e_inlined_leak");
  const ProcessReport& process = OnlyProcess(result);
  const int leak_line = LineOf("inlined_leak.cc", "// LEAK LINE");
  const int call_line = LineOf("inlined_leak.cc", "// CALL LINE");
  ASSERT_GT(leak_line, 0);
  bool found = false;
  for (const SiteReport* site :
       FindSitesByFunction(process, "remember_session", wire::Kind::kHeap)) {
    if (site->live < 300) continue;  // the site of the map nodes (300 live), not the buckets
    for (size_t i = 0; i + 1 < site->frames.size(); ++i) {
      const Frame& frame = site->frames[i];
      if (!frame.function.starts_with("remember_session")) continue;
      found = true;
      EXPECT_TRUE(frame.inlined);
      EXPECT_EQ(frame.line, leak_line);
      EXPECT_TRUE(frame.file.ends_with("inlined_leak.cc")) << frame.file;
      const Frame& caller = site->frames[i + 1];
      EXPECT_TRUE(caller.function.starts_with("(anonymous namespace)::handle_request") ||
                  caller.function.starts_with("handle_request"))
          << caller.function;
      EXPECT_EQ(caller.line, call_line);
      // The headline is the user's own code, not the std:: internals inlined into it.
      EXPECT_EQ(site->headline, i) << site->frames[site->headline].Describe();
    }
  }
  EXPECT_TRUE(found) << "no heap site with 300 live entries through remember_session";
}

}  // namespace
}  // namespace dw::report
