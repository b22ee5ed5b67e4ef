#include "report/store/process_series.h"

#include <algorithm>

namespace dw::report {
namespace {

// Keeps the elements of `values` whose global index (first + local index) is even or at least
// `old_end`: the older part thinned by two, the newest window untouched.
template <typename T>
void ThinOlder(std::vector<T>& values, size_t first, size_t old_end) {
  size_t out = 0;
  for (size_t j = 0; j < values.size(); ++j) {
    const size_t global = first + j;
    if (global >= old_end || global % 2 == 0) values[out++] = values[j];
  }
  values.resize(out);
}

}  // namespace

ProcessSeries::ProcessSeries(size_t max_points)
    : max_points_((std::max<size_t>(max_points, 8) + 3) / 4 * 4) {}

const SiteSeries* ProcessSeries::Find(SiteKey key) const {
  auto it = sites_.find(key);
  return it == sites_.end() ? nullptr : &it->second;
}

void ProcessSeries::Push(std::vector<int64_t>& values, int64_t value) const {
  if (values.size() == values.capacity()) {
    values.reserve(values.capacity() < 16 ? std::min<size_t>(16, max_points_) : max_points_);
  }
  values.push_back(value);
}

void ProcessSeries::Append(const Census& census) {
  if (censuses_seen_++ == 0) first_monotonic_ns_ = census.monotonic_ns;
  if (times_.size() >= max_points_) Thin();

  const size_t index = times_.size();
  times_.push_back(static_cast<double>(census.monotonic_ns - first_monotonic_ns_) / 1e9);
  rss_bytes_.push_back(static_cast<int64_t>(census.totals.rss_bytes));
  fds_.push_back(census.totals.fd_count);
  threads_.push_back(census.totals.thread_count);
  // The sites this census lists first; then every other site repeats its last point.
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    for (const auto& [site_id, counters] : census.counters[kind]) {
      auto [it, inserted] = sites_.try_emplace(SiteKey{static_cast<wire::Kind>(kind), site_id});
      SiteSeries& series = it->second;
      if (inserted) series.first_index = index;
      const int64_t live = counters.Live(), live_bytes = counters.LiveBytes();
      if (inserted || live != series.live.back() || live_bytes != series.live_bytes.back()) {
        series.changed_at = censuses_seen_;
      }
      Push(series.live, live);
      Push(series.live_bytes, live_bytes);
    }
  }
  int64_t heap_live = 0;
  for (auto it = sites_.begin(); it != sites_.end();) {
    SiteSeries& series = it->second;
    if (series.first_index + series.live.size() == index) {  // not in this census
      Push(series.live, series.live.back());
      Push(series.live_bytes, series.live_bytes.back());
    }
    const bool idle = series.live.back() == 0 && series.live_bytes.back() == 0;
    if (idle && censuses_seen_ - series.changed_at >= kQuietCensuses) {
      sites_.erase(it++);  // nothing live and quiet for a while: its points go
      ++sites_compacted_;
      continue;
    }
    if (it->first.kind == wire::Kind::kHeap) AddSaturating(heap_live, series.live_bytes.back());
    ++it;
  }
  heap_live_bytes_.push_back(heap_live);
}

void ProcessSeries::Thin() {
  // The older half of the points (an even count, max_points_ being a multiple of 4) loses
  // every other point; the newest half stays at full resolution.
  const size_t old_end = max_points_ / 2;
  ThinOlder(times_, 0, old_end);
  ThinOlder(rss_bytes_, 0, old_end);
  ThinOlder(fds_, 0, old_end);
  ThinOlder(threads_, 0, old_end);
  ThinOlder(heap_live_bytes_, 0, old_end);
  for (auto& [key, series] : sites_) {
    ThinOlder(series.live, series.first_index, old_end);
    ThinOlder(series.live_bytes, series.first_index, old_end);
    series.first_index = series.first_index >= old_end ? series.first_index - old_end / 2
                                                       : (series.first_index + 1) / 2;
  }
}

}  // namespace dw::report
