#include "report/process_series.h"

#include <algorithm>

namespace dw::report {
namespace {

// Keeps the elements of `values` whose global index (first + local index) is even.
template <typename T>
void KeepEven(std::vector<T>& values, size_t first) {
  size_t out = 0;
  for (size_t j = 0; j < values.size(); ++j) {
    if ((first + j) % 2 == 0) values[out++] = values[j];
  }
  values.resize(out);
}

}  // namespace

ProcessSeries::ProcessSeries(size_t max_points) : max_points_(std::max<size_t>(max_points, 8)) {}

const SiteSeries* ProcessSeries::Find(SiteKey key) const {
  auto it = sites_.find(key);
  return it == sites_.end() ? nullptr : &it->second;
}

void ProcessSeries::Append(const Census& census) {
  if (censuses_seen_++ == 0) first_monotonic_ns_ = census.monotonic_ns;
  // The first census is always kept; afterwards one in `stride_`.
  if (censuses_seen_ > 1 && ++since_kept_ < stride_) return;
  since_kept_ = 0;
  if (times_.size() >= max_points_) Halve();

  const size_t index = times_.size();
  times_.push_back(static_cast<double>(census.monotonic_ns - first_monotonic_ns_) / 1e9);
  rss_bytes_.push_back(static_cast<int64_t>(census.totals.rss_bytes));
  fds_.push_back(census.totals.fd_count);
  threads_.push_back(census.totals.thread_count);
  int64_t heap_live = 0;
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    for (const auto& [site_id, counters] : census.counters[kind]) {
      SiteKey key{static_cast<wire::Kind>(kind), site_id};
      auto [it, inserted] = sites_.try_emplace(key);
      if (inserted) it->second.first_index = index;
      it->second.live.push_back(counters.Live());
      it->second.live_bytes.push_back(counters.LiveBytes());
      if (kind == static_cast<uint32_t>(wire::Kind::kHeap)) {
        AddSaturating(heap_live, counters.LiveBytes());
      }
    }
  }
  heap_live_bytes_.push_back(heap_live);
}

void ProcessSeries::Halve() {
  KeepEven(times_, 0);
  KeepEven(rss_bytes_, 0);
  KeepEven(fds_, 0);
  KeepEven(threads_, 0);
  KeepEven(heap_live_bytes_, 0);
  for (auto& [key, series] : sites_) {
    KeepEven(series.live, series.first_index);
    KeepEven(series.live_bytes, series.first_index);
    series.first_index = (series.first_index + 1) / 2;
  }
  stride_ *= 2;
}

}  // namespace dw::report
