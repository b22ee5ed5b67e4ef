// process_series.h: the time series of one process's censuses, per (kind, site) and in total.
//
// Every census appends one point: live count and live bytes of every site seen so far, plus the
// process totals (rss, fds, threads, heap live bytes). A census may list only the sites it
// changed (the decoder's changes-only mode): the others repeat their last point. Memory is
// bounded per site, so that 100k+ stacks fit (issue 10: at most 2 KiB per site in the
// collector):
//   - a series holds at most max_points points: the newest half of them at full resolution
//     (one per census), and behind that window every other point is dropped each time the
//     series fills, so older censuses are kept ever more sparsely, back to the first;
//   - a site with nothing live that has not changed for kQuietCensuses censuses is compacted:
//     its series is dropped (Find() returns null, as for a site never seen). Should it change
//     again, a new series starts there.
//
// Thread-safety: not thread-safe; owned by the collector thread. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "report/decode/census.h"

namespace dw::report {

struct SiteKey {
  wire::Kind kind = wire::Kind::kHeap;
  uint32_t site_id = 0;

  bool operator==(const SiteKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const SiteKey& key) {
    return H::combine(std::move(h), static_cast<uint32_t>(key.kind), key.site_id);
  }
};

// The points of one site. A site's series starts at the first kept census that carried it; it is
// not back-filled with zeros, so a buffer allocated once mid-run looks flat, not like a step.
struct SiteSeries {
  size_t first_index = 0;  // index into ProcessSeries::times() of live[0]
  std::vector<int64_t> live;
  std::vector<int64_t> live_bytes;
  // ProcessSeries::censuses_seen() when the site last changed (or first appeared).
  uint64_t changed_at = 0;
};

class ProcessSeries {
 public:
  // 64 points of 16 bytes per site: with the site's stack, its counters and the hash tables'
  // slots, about 1.7 KiB a site (measured by bench/census_scale), under the 2 KiB target.
  static constexpr size_t kDefaultMaxPoints = 64;
  // A site with nothing live, unchanged for this many censuses, is compacted.
  static constexpr uint64_t kQuietCensuses = 8;

  // `max_points` is rounded up to a multiple of 4, and to at least 8.
  explicit ProcessSeries(size_t max_points = kDefaultMaxPoints);

  // Records one census. Sites the census does not list keep their last values.
  void Append(const Census& census);

  // Seconds since the first census of the process, one entry per kept census.
  const std::vector<double>& times() const { return times_; }
  // The timestamps matching a site's points.
  std::span<const double> TimesOf(const SiteSeries& series) const {
    return std::span<const double>(times_).subspan(series.first_index, series.live.size());
  }
  const absl::flat_hash_map<SiteKey, SiteSeries>& sites() const { return sites_; }
  const SiteSeries* Find(SiteKey key) const;

  // Process totals, aligned with times().
  const std::vector<int64_t>& rss_bytes() const { return rss_bytes_; }
  const std::vector<int64_t>& fds() const { return fds_; }
  const std::vector<int64_t>& threads() const { return threads_; }
  const std::vector<int64_t>& heap_live_bytes() const { return heap_live_bytes_; }

  // Censuses offered to Append().
  size_t censuses_seen() const { return censuses_seen_; }
  // Sites whose series were compacted so far.
  size_t sites_compacted() const { return sites_compacted_; }

 private:
  // Drops every other point of the older half, to make room.
  void Thin();
  // Appends `value`: room for 16 points first (most sites of a short run need no more), then
  // for max_points_ at once, so that a long run leaves no chunks of every size behind.
  void Push(std::vector<int64_t>& values, int64_t value) const;

  size_t max_points_;
  size_t censuses_seen_ = 0;
  size_t sites_compacted_ = 0;
  uint64_t first_monotonic_ns_ = 0;
  std::vector<double> times_;
  std::vector<int64_t> rss_bytes_, fds_, threads_, heap_live_bytes_;
  absl::flat_hash_map<SiteKey, SiteSeries> sites_;
};

}  // namespace dw::report
