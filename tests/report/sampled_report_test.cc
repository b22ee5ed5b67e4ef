// Sampled mode end to end through the collector library: a hand-built census stream whose Hello
// says sampled (with its mean) goes through the decoder, the series, BuildProcessReports and the
// outputs. Heap figures are marked as estimates with the rate, and a heap site hit by a few
// samples only makes the run inconclusive, saying how long a run would tell.
#include <stdio.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "report/analysis/process_analysis.h"
#include "report/decode/census_stream.h"
#include "report/outputs/report_output.h"
#include "tests/report/census_stream_builder.h"

namespace dw::report {
namespace {

using testing::Counter;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::StreamBuilder;

constexpr uint32_t kMean = 512 * 1024;
constexpr int kCensuses = 120;

// Hello of `mode` with `mean` (StreamBuilder::Hello sends exact mode only).
void Hello(StreamBuilder& b, uint16_t mode, uint32_t mean) {
  const std::string exe = "/srv/sampled";
  wire::Hello hello{};
  hello.magic = wire::kHelloMagic;
  hello.protocol_version = wire::kProtocolVersion;
  hello.pid = 77;
  hello.ppid = 1;
  hello.start_time_ticks = 12345;
  hello.clock_ticks_per_second = 100;
  hello.interval_ms = 1000;
  hello.depth = 16;
  hello.mode = mode;
  hello.sample_mean_bytes = mean;
  hello.exe_length = static_cast<uint32_t>(exe.size());
  b.Record(wire::RecordType::kHello, StreamBuilder::Bytes(hello) + exe);
}

// Site 1: a slow leak of small blocks hit by three samples (at censuses 30, 60 and 90), each
// standing for 512 KiB. Site 2: a steady 8 MiB.
RunResult Collect(uint16_t mode, uint32_t mean, bool leak = true) {
  StreamBuilder b;
  Hello(b, mode, mean);
  for (int i = 0; i < kCensuses; ++i) {
    b.Begin(i, static_cast<uint64_t>(i) * 1'000'000'000, 64 << 20);
    if (i == 0) {
      b.Site(1, {0x1000, 0x1008});
      b.Site(2, {0x2000, 0x2008});
    }
    const uint64_t samples = leak ? (i >= 30) + (i >= 60) + (i >= 90) : 0;
    b.Counters(wire::Kind::kHeap,
               {Counter(1, samples * 8192, 0, samples * kMean, 0), Counter(2, 128, 0, 8 << 20, 0)});
    b.End(i, i + 1 == kCensuses ? wire::kCensusFinal : 0);
  }
  std::vector<ConnectionRecord> records;
  records.push_back(testing::RecordFromStream(b.Take()));
  EXPECT_EQ(records[0].stream_error, "");
  RobustDriftAnalyzer analyzer;
  Symbolizer symbolizer;
  RunResult result;
  result.command = {"/srv/sampled"};
  result.interval_ms = 1000;
  result.duration_s = kCensuses;
  result.processes = BuildProcessReports(std::move(records), analyzer, symbolizer);
  result.verdict = ComputeVerdict(result.processes);
  return result;
}

std::string Terminal(const RunResult& result) {
  char* text = nullptr;
  size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  PrintTerminalReport(result, out);
  std::fclose(out);
  std::string report(text, size);
  free(text);
  return report;
}

TEST(SampledReportTest, FewSamplesMakeTheRunInconclusiveWithTheTimeNeeded) {
  const RunResult result = Collect(wire::kModeSampled, kMean);
  ASSERT_EQ(result.processes.size(), 1u);
  const ProcessReport& process = result.processes[0];
  EXPECT_EQ(process.mode, wire::kModeSampled);
  EXPECT_EQ(process.sample_mean_bytes, kMean);
  const SiteReport* leak = nullptr;
  for (const SiteReport& group : process.groups) {
    if (group.site_id == 1) leak = &group;
  }
  ASSERT_NE(leak, nullptr);
  EXPECT_EQ(leak->finding.status, DriftStatus::kInconclusive);
  EXPECT_TRUE(leak->finding.estimated);
  EXPECT_GT(leak->finding.needed_run_s, kCensuses);
  EXPECT_EQ(result.verdict, Verdict::kInconclusive);

  const std::string text = Terminal(result);
  EXPECT_THAT(text, HasSubstr("driftwatch: inconclusive: 1 sampled heap site rose by too few"));
  EXPECT_THAT(text, HasSubstr("heap figures are estimates (sampled mode, one sample per "
                              "512.0 KiB on average)"));
  EXPECT_THAT(text, HasSubstr("at 512.0 KiB sampling, a leak of "));
  EXPECT_THAT(text, HasSubstr("needs ~"));
  EXPECT_THAT(text, HasSubstr("heap live ~"));

  const std::string json = RenderVerdictJson(result);
  EXPECT_THAT(json, HasSubstr("\"mode\":\"sampled\",\"sample_mean_bytes\":524288"));
  EXPECT_THAT(json, HasSubstr("\"heap_estimated\":true"));
  EXPECT_THAT(json, HasSubstr("\"status\":\"inconclusive\""));
  EXPECT_THAT(json, HasSubstr("\"estimated\":true,\"sample_mean_bytes\":524288"));
  EXPECT_THAT(json, HasSubstr("\"needed_run_s\":"));
  EXPECT_THAT(json, Not(HasSubstr("\"needed_run_s\":null")));
}

// The same figures in exact mode are exact: not estimates, and not inconclusive for want of
// samples.
TEST(SampledReportTest, ExactModeFiguresAreNotEstimates) {
  const RunResult result = Collect(wire::kModeExact, 0);
  ASSERT_EQ(result.processes.size(), 1u);
  EXPECT_NE(result.verdict, Verdict::kInconclusive);
  for (const SiteReport& group : result.processes[0].groups) {
    EXPECT_FALSE(group.finding.estimated);
    EXPECT_NE(group.finding.status, DriftStatus::kInconclusive);
  }
  EXPECT_THAT(Terminal(result), Not(HasSubstr("estimates")));
  const std::string json = RenderVerdictJson(result);
  EXPECT_THAT(json, HasSubstr("\"mode\":\"exact\",\"sample_mean_bytes\":null"));
  EXPECT_THAT(json, HasSubstr("\"heap_estimated\":false"));
}

// Steady in sampled mode is steady only down to what the run could see: the verdict says how
// slow a leak may go unseen, and the JSON gives that rate.
TEST(SampledReportTest, SteadySaysWhatARunThisLongCannotSee) {
  const RunResult result = Collect(wire::kModeSampled, kMean, /*leak=*/false);
  EXPECT_EQ(result.verdict, Verdict::kSteady);
  // 19.2 samples of 512 KiB over 0.9 of the 119 s: 92 KiB/s, 5.4 MiB/min.
  EXPECT_THAT(Terminal(result), HasSubstr("driftwatch: steady: no site keeps growing (1 process); "
                                          "sampled heap: leaks below ~5.4 MiB/min per site"));
  EXPECT_THAT(RenderVerdictJson(result), HasSubstr("\"heap_detectable_slope_per_hour\":3"));
  const RunResult exact = Collect(wire::kModeExact, 0, /*leak=*/false);
  EXPECT_THAT(Terminal(exact), Not(HasSubstr("sampled heap")));
  EXPECT_THAT(RenderVerdictJson(exact), HasSubstr("\"heap_detectable_slope_per_hour\":null"));
}

}  // namespace
}  // namespace dw::report
