// Tests of ProcessSeries: alignment of site series, totals, and bounded memory.
#include "report/store/process_series.h"

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
  EXPECT_GE(series.times().size(), 12u);
  EXPECT_EQ(series.censuses_seen(), 1000u);
  EXPECT_DOUBLE_EQ(series.times()[0], 0.0) << "the start of the run is kept";
  EXPECT_DOUBLE_EQ(series.times().back(), 999.0) << "the series reaches the end of the run";
  for (const auto& [key, site] : series.sites()) {
    EXPECT_EQ(site.first_index + site.live.size(), series.times().size());
    EXPECT_EQ(site.live.size(), site.live_bytes.size());
    EXPECT_LE(site.live.capacity(), 16u) << "memory per site is bounded";
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

// The newest half of the points is one per census; behind it the points thin out.
TEST(ProcessSeriesTest, NewestWindowAtFullResolution) {
  ProcessSeries series(16);
  for (uint64_t i = 0; i < 200; ++i) series.Append(MakeCensus(i, false));
  const std::vector<double>& times = series.times();
  ASSERT_GE(times.size(), 12u);
  for (size_t i = times.size() - 8; i < times.size(); ++i) {
    EXPECT_DOUBLE_EQ(times[i] - times[i - 1], 1.0) << "point " << i;
  }
  EXPECT_GT(times[1] - times[0], 8.0) << "the oldest points are sparse";
  for (size_t i = 1; i < times.size(); ++i) EXPECT_LT(times[i - 1], times[i]);
}

// A census may list only the sites it changed: the others repeat their last point.
TEST(ProcessSeriesTest, SitesLeftOutKeepTheirLastValues) {
  ProcessSeries series;
  Census census;
  census.counters[0][1] = SiteCounters{3, 1, 300, 100};
  census.counters[0][2] = SiteCounters{1, 0, 50, 0};
  series.Append(census);
  for (uint64_t i = 1; i < 5; ++i) {
    Census changes;
    changes.monotonic_ns = i * 1'000'000'000;
    changes.counters[0][2] = SiteCounters{1 + i, 0, 50 * (1 + i), 0};
    series.Append(changes);
  }
  const SiteSeries* quiet = series.Find({wire::Kind::kHeap, 1});
  ASSERT_NE(quiet, nullptr);
  EXPECT_EQ(quiet->live_bytes, (std::vector<int64_t>{200, 200, 200, 200, 200}));
  EXPECT_EQ(series.Find({wire::Kind::kHeap, 2})->live_bytes.back(), 250);
  EXPECT_EQ(series.heap_live_bytes().back(), 450);
}

Census At(uint64_t seconds) {
  Census census;
  census.monotonic_ns = seconds * 1'000'000'000;
  return census;
}

// A site with nothing live that stays unchanged is compacted; one with live blocks is not,
// however long it stays unchanged; a compacted site that comes back starts a new series.
TEST(ProcessSeriesTest, QuietSitesWithNothingLiveAreCompacted) {
  ProcessSeries series;
  Census first;
  first.counters[0][1] = SiteCounters{4, 4, 400, 400};  // all freed
  first.counters[0][2] = SiteCounters{4, 3, 400, 300};  // one block live
  series.Append(first);
  const uint64_t quiet = ProcessSeries::kQuietCensuses;
  for (uint64_t i = 1; i < quiet; ++i) series.Append(At(i));
  EXPECT_NE(series.Find({wire::Kind::kHeap, 1}), nullptr) << "not quiet long enough yet";
  series.Append(At(quiet));
  EXPECT_EQ(series.Find({wire::Kind::kHeap, 1}), nullptr);
  EXPECT_EQ(series.sites_compacted(), 1u);
  ASSERT_NE(series.Find({wire::Kind::kHeap, 2}), nullptr);
  EXPECT_EQ(series.Find({wire::Kind::kHeap, 2})->live.size(), quiet + 1);

  Census again = At(quiet + 1);
  again.counters[0][1] = SiteCounters{5, 4, 500, 400};
  series.Append(again);
  const SiteSeries* back = series.Find({wire::Kind::kHeap, 1});
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->first_index, quiet + 1);
  EXPECT_EQ(back->live_bytes, (std::vector<int64_t>{100}));
  EXPECT_EQ(series.heap_live_bytes().back(), 200);
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
