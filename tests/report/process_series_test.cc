// Tests of ProcessSeries: alignment of site series, totals, and bounded memory.
#include "report/process_series.h"

#include <gtest/gtest.h>

namespace dw::report {
namespace {

Census MakeCensus(uint64_t index, bool with_late_site) {
  Census census;
  census.sequence = index;
  census.monotonic_ns = 5'000'000'000 + index * 1'000'000'000;
  census.totals.rss_bytes = 1000 + index;
  census.totals.fd_count = 3;
  census.totals.thread_count = 2;
  census.counters[0][1] = SiteCounters{index, 0, index * 10, 0};
  census.counters[2][0] = SiteCounters{5, 2, 0, 0};  // fds, unattributed
  if (with_late_site) census.counters[0][2] = SiteCounters{1, 0, 7, 0};
  return census;
}

TEST(ProcessSeriesTest, RecordsSitesAndTotals) {
  ProcessSeries series;
  for (uint64_t i = 0; i < 10; ++i) series.Append(MakeCensus(i, i >= 4));
  ASSERT_EQ(series.times().size(), 10u);
  EXPECT_DOUBLE_EQ(series.times()[0], 0.0);
  EXPECT_DOUBLE_EQ(series.times()[9], 9.0);
  const SiteSeries* heap = series.Find({wire::Kind::kHeap, 1});
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->live_bytes[9], 90);
  const SiteSeries* late = series.Find({wire::Kind::kHeap, 2});
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(late->first_index, 4u) << "no zero back-fill before a site appears";
  EXPECT_EQ(series.TimesOf(*late).size(), 6u);
  EXPECT_DOUBLE_EQ(series.TimesOf(*late)[0], 4.0);
  EXPECT_EQ(series.Find({wire::Kind::kFds, 0})->live[0], 3);
  EXPECT_EQ(series.heap_live_bytes()[9], 90 + 7);
  EXPECT_EQ(series.rss_bytes()[9], 1009);
  EXPECT_EQ(series.Find({wire::Kind::kTimers, 1}), nullptr);
}

TEST(ProcessSeriesTest, StaysBoundedAndAligned) {
  ProcessSeries series(16);
  for (uint64_t i = 0; i < 1000; ++i) series.Append(MakeCensus(i, i >= 333));
  EXPECT_LE(series.times().size(), 16u);
  EXPECT_GE(series.times().size(), 8u);
  EXPECT_EQ(series.censuses_seen(), 1000u);
  EXPECT_GT(series.stride(), 1u);
  EXPECT_DOUBLE_EQ(series.times()[0], 0.0) << "the start of the run is kept";
  EXPECT_GT(series.times().back(), 900.0) << "the series still reaches the end of the run";
  for (const auto& [key, site] : series.sites()) {
    EXPECT_EQ(site.first_index + site.live.size(), series.times().size());
    EXPECT_EQ(site.live.size(), site.live_bytes.size());
  }
  // The values stay matched with their timestamps: site 1 has live_bytes == 10 * seconds.
  const SiteSeries* heap = series.Find({wire::Kind::kHeap, 1});
  const auto times = series.TimesOf(*heap);
  for (size_t i = 0; i < heap->live_bytes.size(); ++i) {
    EXPECT_EQ(heap->live_bytes[i], static_cast<int64_t>(times[i] * 10));
  }
  const SiteSeries* late = series.Find({wire::Kind::kHeap, 2});
  EXPECT_GE(series.TimesOf(*late)[0], 333.0);
}

// Any connected process can send these figures (tests/report/hostile/
// census_stream_heap_live_overflow is the fuzzer's stream): the heap total saturates instead of
// overflowing int64, which UBSan (scripts/sanitize) reports.
TEST(ProcessSeriesTest, HostileLiveBytesSaturateTheHeapTotal) {
  ProcessSeries series(16);
  Census census;
  census.monotonic_ns = 1'000'000'000;
  constexpr uint64_t kHuge = uint64_t{1} << 63;
  census.counters[0][1] = SiteCounters{1, 0, kHuge - 1, 0};
  census.counters[0][2] = SiteCounters{1, 0, kHuge - 1, 0};
  series.Append(census);
  EXPECT_EQ(series.heap_live_bytes().back(), INT64_MAX);
  census.counters[0][1] = SiteCounters{0, 1, 0, kHuge};
  census.counters[0][2] = SiteCounters{0, 1, 0, kHuge - 1};
  census.monotonic_ns = 2'000'000'000;
  series.Append(census);
  EXPECT_EQ(series.heap_live_bytes().back(), INT64_MIN);
}

}  // namespace
}  // namespace dw::report
