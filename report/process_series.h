// process_series.h: the time series of one process's censuses, per (kind, site) and in total.
//
// Every census appends one point: live count and live bytes of every site seen so far, plus the
// process totals (rss, fds, threads, heap live bytes). Memory is bounded: when a series reaches
// max_points, every other point is dropped and from then on only every 2nd (4th, ...) census is
// kept, so the series always spans the whole run with roughly even spacing.
//
// Thread-safety: not thread-safe; owned by the collector thread. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "report/census.h"

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
};

class ProcessSeries {
 public:
  static constexpr size_t kDefaultMaxPoints = 512;

  explicit ProcessSeries(size_t max_points = kDefaultMaxPoints);

  // Records one census (counters already carried forward by the decoder).
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

  // Censuses offered to Append(), kept or not.
  size_t censuses_seen() const { return censuses_seen_; }
  // Only every stride-th census is kept.
  size_t stride() const { return stride_; }

 private:
  void Halve();

  size_t max_points_;
  size_t stride_ = 1;
  size_t since_kept_ = 0;
  size_t censuses_seen_ = 0;
  uint64_t first_monotonic_ns_ = 0;
  std::vector<double> times_;
  std::vector<int64_t> rss_bytes_, fds_, threads_, heap_live_bytes_;
  absl::flat_hash_map<SiteKey, SiteSeries> sites_;
};

}  // namespace dw::report
