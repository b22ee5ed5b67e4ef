#include "report/decode/census_encoder.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"

namespace dw::report {
namespace {

template <typename T>
void Put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Appends a record whose payload is `payload`.
void AppendRecord(std::string& out, wire::RecordType type, std::string_view payload) {
  Put(out, wire::RecordHeader{static_cast<uint32_t>(type), static_cast<uint32_t>(payload.size())});
  out.append(payload);
}

void AppendModules(std::string& out, const ModuleList& modules) {
  std::string payload;
  const uint32_t history =
      modules.has_unload_history
          ? uint32_t{modules.unload_history_start} | (uint32_t{modules.unload_generation} << 16)
          : 0;
  Put(payload, wire::ModuleListHeader{static_cast<uint32_t>(modules.size()), history});
  std::string build_ids;
  uint32_t build_id_count = 0;
  for (size_t i = 0; i < modules.size(); ++i) {
    const ModuleMapping& mapping = modules[i];
    // The decoder strips the kernel's " (deleted)" mark into `deleted`; put it back.
    const std::string path = mapping.deleted ? mapping.path + " (deleted)" : mapping.path;
    Put(payload, wire::ModuleEntry{mapping.start, mapping.end, mapping.file_offset, mapping.flags,
                                   static_cast<uint32_t>(path.size())});
    payload += path;
    if (mapping.build_id.empty()) continue;
    const std::string bytes = absl::HexStringToBytes(mapping.build_id);
    Put(build_ids,
        wire::BuildIdEntry{static_cast<uint32_t>(i), static_cast<uint32_t>(bytes.size())});
    build_ids += bytes;
    ++build_id_count;
  }
  AppendRecord(out, wire::RecordType::kModuleList, payload);
  if (build_id_count == 0) return;
  std::string header;
  Put(header, wire::BuildIdsHeader{build_id_count, 0});
  AppendRecord(out, wire::RecordType::kBuildIds, header + build_ids);
}

// Written in place (no payload string per site): a key frame may define 100k sites.
void AppendSiteDef(std::string& out, uint32_t id, const SiteStack& stack) {
  const size_t frames = stack.return_addresses.size() * sizeof(uint64_t);
  Put(out, wire::RecordHeader{static_cast<uint32_t>(wire::RecordType::kSiteDef),
                              static_cast<uint32_t>(sizeof(wire::SiteDef) + frames)});
  Put(out, wire::SiteDef{id, static_cast<uint16_t>(stack.return_addresses.size()),
                         stack.module_generation});
  out.append(reinterpret_cast<const char*>(stack.return_addresses.data()), frames);
}

// Every site's definition, grouped by the module list it was defined under: each list (oldest
// first, judged by the lowest site id defined under it) right before its sites, the census's
// current list last (it is the one the census keeps).
void AppendSites(std::string& out, const ModuleList* current,
                 const absl::flat_hash_map<uint32_t, SiteStack>& sites) {
  absl::flat_hash_map<const ModuleList*, std::vector<std::pair<uint32_t, const SiteStack*>>>
      by_list;
  for (const auto& [id, stack] : sites) by_list[stack.modules.get()].emplace_back(id, &stack);
  std::vector<std::pair<const ModuleList*, std::vector<std::pair<uint32_t, const SiteStack*>>>>
      groups(by_list.begin(), by_list.end());
  for (auto& [list, ids] : groups) std::sort(ids.begin(), ids.end());
  std::sort(groups.begin(), groups.end(), [current](const auto& a, const auto& b) {
    // Sites defined before any module list first, the current list last.
    const auto rank = [current](const ModuleList* list) {
      return list == nullptr ? 0 : list == current ? 2 : 1;
    };
    if (rank(a.first) != rank(b.first)) return rank(a.first) < rank(b.first);
    return a.second.front().first < b.second.front().first;
  });
  bool current_sent = false;
  for (const auto& [list, ids] : groups) {
    if (list != nullptr) AppendModules(out, *list);
    current_sent = current_sent || list == current;
    for (const auto& [id, stack] : ids) AppendSiteDef(out, id, *stack);
  }
  if (current != nullptr && !current_sent) AppendModules(out, *current);
}

void AppendCounters(std::string& out, const std::array<KindCounters, wire::kKindCount>& counters) {
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    if (counters[kind].empty()) continue;
    std::string payload;
    payload.reserve(sizeof(wire::CountersHeader) +
                    counters[kind].size() * sizeof(wire::SiteCounter));
    Put(payload, wire::CountersHeader{kind, static_cast<uint32_t>(counters[kind].size())});
    for (const auto& [site, values] : counters[kind]) {
      Put(payload, wire::SiteCounter{site, values.detail, values.acquired, values.released,
                                     values.acquired_bytes, values.released_bytes});
    }
    AppendRecord(out, wire::RecordType::kCounters, payload);
  }
}

void AppendLimits(std::string& out, const ProcessLimits& limits) {
  std::string payload;
  Put(payload, wire::Limits{limits.nofile_soft, limits.nofile_hard, limits.nproc_soft,
                            limits.pids_max, limits.threads_max, limits.memory_limit_bytes,
                            limits.memory_total_bytes, limits.address_space_bytes});
  AppendRecord(out, wire::RecordType::kLimits, payload);
}

void AppendThreadStates(std::string& out, const ThreadStates& states) {
  std::string payload;
  Put(payload, wire::ThreadStatesHeader{static_cast<uint32_t>(states.size()), 0});
  for (const auto& [site, state] : states) {
    Put(payload,
        wire::ThreadSiteState{site, state.running, state.sleeping, state.disk_sleeping,
                              state.stopped, state.exited_unjoined, state.longest_idle_ms,
                              state.idle_over_minute, static_cast<uint32_t>(state.wchan.size())});
    payload += state.wchan;
  }
  AppendRecord(out, wire::RecordType::kThreadStates, payload);
}

}  // namespace

std::string EncodeHello(const HelloInfo& hello) {
  const ProcessIdentity& id = hello.identity;
  std::string payload;
  Put(payload, wire::Hello{wire::kHelloMagic, hello.protocol_version, id.pid, id.ppid,
                           id.start_time_ticks, id.clock_ticks_per_second,
                           hello.realtime_ns_at_hello, hello.interval_ms, hello.depth, hello.mode,
                           static_cast<uint32_t>(id.exe.size()), hello.sample_mean_bytes});
  payload += id.exe;
  std::string out;
  AppendRecord(out, wire::RecordType::kHello, payload);
  return out;
}

std::string EncodeStateCensus(const Census& last,
                              const absl::flat_hash_map<uint32_t, SiteStack>& sites,
                              const std::array<KindCounters, wire::kKindCount>& counters) {
  std::string out;
  // Most of a key frame: every SiteDef (8 + 8 per frame) and every SiteCounter (40).
  size_t site_bytes = 0;
  for (const auto& [id, stack] : sites) site_bytes += 16 + 8 * stack.return_addresses.size();
  size_t counter_count = 0;
  for (const KindCounters& kind : counters) counter_count += kind.size();
  out.reserve(site_bytes + counter_count * sizeof(wire::SiteCounter) + 4096);
  std::string begin;
  const CensusTotals& totals = last.totals;
  Put(begin, wire::CensusBegin{last.sequence, last.realtime_ns, last.monotonic_ns, totals.rss_bytes,
                               totals.fd_count, totals.thread_count, totals.censuses_dropped,
                               totals.sites_overflowed, totals.table_overflowed,
                               totals.untracked_releases});
  AppendRecord(out, wire::RecordType::kCensusBegin, begin);
  AppendSites(out, last.modules.get(), sites);
  AppendCounters(out, counters);
  if (last.limits.has_value()) AppendLimits(out, *last.limits);
  if (last.has_thread_states) AppendThreadStates(out, last.thread_states);
  std::string end;
  Put(end, wire::CensusEnd{last.sequence, last.final ? wire::kCensusFinal : 0u, 0});
  AppendRecord(out, wire::RecordType::kCensusEnd, end);
  return out;
}

size_t CensusCursor::FeedToCensusEnd(std::string_view bytes) {
  at_census_end_ = false;
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (header_have_ < sizeof(header_)) {
      const size_t take = std::min(sizeof(header_) - header_have_, bytes.size() - pos);
      std::memcpy(header_ + header_have_, bytes.data() + pos, take);
      header_have_ += take;
      pos += take;
      if (header_have_ < sizeof(header_)) break;
      wire::RecordHeader header;
      std::memcpy(&header, header_, sizeof(header));
      record_type_ = header.type;
      payload_left_ = header.length;
    } else {
      const size_t take =
          static_cast<size_t>(std::min<uint64_t>(payload_left_, bytes.size() - pos));
      pos += take;
      payload_left_ -= take;
    }
    if (header_have_ == sizeof(header_) && payload_left_ == 0) {
      header_have_ = 0;  // the record is complete
      if (record_type_ == static_cast<uint32_t>(wire::RecordType::kCensusEnd)) {
        at_census_end_ = true;
        break;
      }
    }
  }
  if (!status_.ok()) {
    at_census_end_ = false;
    return pos;
  }
  status_ = decoder_.Feed(bytes.substr(0, pos));
  std::vector<Census> censuses = decoder_.TakeCensuses();
  if (!censuses.empty()) {
    last_ = std::move(censuses.back());
    last_->counters = {};  // the changes only; the key frame takes every site's from the decoder
  }
  if (!status_.ok()) at_census_end_ = false;
  return pos;
}

std::string CensusCursor::KeyFrame() const {
  if (!hello().has_value() || !last_.has_value()) return {};
  return EncodeHello(*hello()) + EncodeStateCensus(*last_, decoder_.sites(), decoder_.counters());
}

}  // namespace dw::report
