#include "report/decode/census_stream.h"

#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dw::report {
namespace {

// The wire format is little-endian and the records are read by memcpy into the wire structs.
static_assert(std::endian::native == std::endian::little,
              "the census decoder assumes a little-endian host");

template <typename T>
T ReadAt(std::string_view bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

const char* RecordName(uint32_t type) {
  switch (static_cast<wire::RecordType>(type)) {
    case wire::RecordType::kHello:
      return "Hello";
    case wire::RecordType::kCensusBegin:
      return "CensusBegin";
    case wire::RecordType::kModuleList:
      return "ModuleList";
    case wire::RecordType::kSiteDef:
      return "SiteDef";
    case wire::RecordType::kCounters:
      return "Counters";
    case wire::RecordType::kCensusEnd:
      return "CensusEnd";
    case wire::RecordType::kLimits:
      return "Limits";
    case wire::RecordType::kThreadStates:
      return "ThreadStates";
    case wire::RecordType::kBuildIds:
      return "BuildIds";
    case wire::RecordType::kImage:
      return "Image";
  }
  return "unknown";
}

struct BitName {
  uint32_t bit;
  const char* name;
};

constexpr BitName kFdTypeNames[] = {
    {wire::kFdFile, "file"},
    {wire::kFdDirectory, "directory"},
    {wire::kFdCharDevice, "char_device"},
    {wire::kFdBlockDevice, "block_device"},
    {wire::kFdPipe, "pipe"},
    {wire::kFdSocketUnix, "socket/unix"},
    {wire::kFdSocketInet, "socket/inet"},
    {wire::kFdSocketInet6, "socket/inet6"},
    {wire::kFdSocketNetlink, "socket/netlink"},
    {wire::kFdSocketOther, "socket"},
    {wire::kFdEventfd, "eventfd"},
    {wire::kFdTimerfd, "timerfd"},
    {wire::kFdSignalfd, "signalfd"},
    {wire::kFdEpoll, "epoll"},
    {wire::kFdInotify, "inotify"},
    {wire::kFdFanotify, "fanotify"},
    {wire::kFdMemfd, "memfd"},
    {wire::kFdPidfd, "pidfd"},
    {wire::kFdOtherAnon, "anon_inode"},
    {wire::kFdUnknown, "unknown"},
};

constexpr BitName kTimerNotifyNames[] = {
    {wire::kTimerSignal, "signal"},
    {wire::kTimerThread, "thread"},
    {wire::kTimerNone, "none"},
    {wire::kTimerThreadId, "thread_id"},
};

// Names of the set bits of `detail`, lowest first; bits missing from `names` become "bit<N>" so
// that a newer shim's additions still show.
template <size_t N>
std::vector<std::string> BitNames(uint32_t detail, const BitName (&names)[N]) {
  std::vector<std::string> out;
  for (uint32_t bit = 0; bit < 32; ++bit) {
    const uint32_t mask = uint32_t{1} << bit;
    if ((detail & mask) == 0) continue;
    const char* name = nullptr;
    for (const BitName& entry : names) {
      if (entry.bit == mask) name = entry.name;
    }
    out.push_back(name != nullptr ? std::string(name) : absl::StrCat("bit", bit));
  }
  return out;
}

}  // namespace

std::vector<std::string> FdTypeNames(uint32_t detail) { return BitNames(detail, kFdTypeNames); }

std::vector<std::string> TimerNotifyNames(uint32_t detail) {
  return BitNames(detail, kTimerNotifyNames);
}

const char* KindName(wire::Kind kind) {
  switch (kind) {
    case wire::Kind::kHeap:
      return "heap";
    case wire::Kind::kThreads:
      return "threads";
    case wire::Kind::kFds:
      return "fds";
    case wire::Kind::kTimers:
      return "timers";
  }
  return "unknown";
}

absl::Status CensusStreamDecoder::Fail(absl::Status status) {
  error_ = std::move(status);
  buffer_.clear();
  return error_;
}

absl::Status CensusStreamDecoder::Feed(std::string_view bytes) {
  if (!error_.ok()) return error_;
  buffer_.append(bytes);
  size_t pos = 0;
  while (buffer_.size() - pos >= sizeof(wire::RecordHeader)) {
    const auto header = ReadAt<wire::RecordHeader>(buffer_, pos);
    const uint64_t record_offset = stream_offset_ + pos;
    if (!hello_.has_value() && header.type != static_cast<uint32_t>(wire::RecordType::kHello)) {
      return Fail(absl::InvalidArgumentError(absl::StrFormat(
          "stream does not start with a Hello record (first record type %d): not a driftwatch "
          "census stream",
          header.type)));
    }
    // Checked before waiting for the payload, so a corrupt length cannot make us buffer 4 GiB.
    if (header.length > wire::kMaxRecordLength) {
      return Fail(absl::DataLossError(
          absl::StrFormat("record at stream offset %d (type %d) claims %d payload bytes, more than "
                          "the limit of %d",
                          record_offset, header.type, header.length, wire::kMaxRecordLength)));
    }
    if (buffer_.size() - pos - sizeof(wire::RecordHeader) < header.length) break;
    std::string_view payload(buffer_.data() + pos + sizeof(wire::RecordHeader), header.length);
    if (absl::Status status = DecodeRecord(header.type, payload); !status.ok()) {
      return Fail(absl::Status(status.code(), absl::StrFormat("%s record at stream offset %d: %s",
                                                              RecordName(header.type),
                                                              record_offset, status.message())));
    }
    pos += sizeof(wire::RecordHeader) + header.length;
  }
  buffer_.erase(0, pos);
  stream_offset_ += pos;
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::Finish() const {
  if (!error_.ok()) return error_;
  if (!buffer_.empty()) {
    return absl::DataLossError(absl::StrFormat(
        "stream ended inside a record (%d bytes of an incomplete record at offset %d)",
        buffer_.size(), stream_offset_));
  }
  if (open_census_.has_value()) {
    return absl::DataLossError(
        absl::StrFormat("stream ended inside census %d (no CensusEnd)", open_census_->sequence));
  }
  return absl::OkStatus();
}

std::vector<Census> CensusStreamDecoder::TakeCensuses() { return std::exchange(ready_, {}); }

absl::Status CensusStreamDecoder::DecodeRecord(uint32_t type, std::string_view payload) {
  if (hello_.has_value() && type != static_cast<uint32_t>(wire::RecordType::kImage)) {
    hello_complete_ = true;
  }
  // BuildIds amends the ModuleList right before it, and nothing else.
  ModuleList* amendable = std::exchange(amendable_modules_, nullptr);
  switch (static_cast<wire::RecordType>(type)) {
    case wire::RecordType::kHello:
      return DecodeHello(payload);
    case wire::RecordType::kCensusBegin:
      return DecodeCensusBegin(payload);
    case wire::RecordType::kModuleList:
      return DecodeModuleList(payload);
    case wire::RecordType::kSiteDef:
      return DecodeSiteDef(payload);
    case wire::RecordType::kCounters:
      return DecodeCounters(payload);
    case wire::RecordType::kCensusEnd:
      return DecodeCensusEnd(payload);
    case wire::RecordType::kLimits:
      return DecodeLimits(payload);
    case wire::RecordType::kThreadStates:
      return DecodeThreadStates(payload);
    case wire::RecordType::kBuildIds:
      return DecodeBuildIds(payload, amendable);
    case wire::RecordType::kImage:
      return DecodeImage(payload);
  }
  // Unknown record types are skipped so that later protocol versions can add records.
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeHello(std::string_view payload) {
  if (hello_.has_value()) return absl::InvalidArgumentError("second Hello on one connection");
  // The magic is checked first so that a stranger gets "not a census stream", not a size error.
  if (payload.size() < sizeof(uint32_t) || ReadAt<uint32_t>(payload, 0) != wire::kHelloMagic) {
    return absl::InvalidArgumentError("bad magic: not a driftwatch census stream");
  }
  if (payload.size() < sizeof(wire::Hello)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("payload of %d bytes is shorter than the %d-byte fixed part",
                        payload.size(), sizeof(wire::Hello)));
  }
  const auto hello = ReadAt<wire::Hello>(payload, 0);
  if (hello.protocol_version != wire::kProtocolVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("protocol version %d is not supported (this collector speaks version %d)",
                        hello.protocol_version, wire::kProtocolVersion));
  }
  if (hello.exe_length != payload.size() - sizeof(wire::Hello)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("exe_length %d does not match the %d bytes after the fixed part",
                        hello.exe_length, payload.size() - sizeof(wire::Hello)));
  }
  if (hello.depth > wire::kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrFormat("depth %d exceeds kMaxDepth %d", hello.depth, wire::kMaxDepth));
  }
  if (hello.mode != wire::kModeExact && hello.mode != wire::kModeSampled) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown mode %d", hello.mode));
  }
  if ((hello.mode == wire::kModeSampled) != (hello.sample_mean_bytes != 0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mode %d with a sampling mean of %d bytes (only sampled mode has one, and it is not 0)",
        hello.mode, hello.sample_mean_bytes));
  }
  HelloInfo info;
  info.identity.pid = hello.pid;
  info.identity.ppid = hello.ppid;
  info.identity.start_time_ticks = hello.start_time_ticks;
  info.identity.clock_ticks_per_second = hello.clock_ticks_per_second;
  info.identity.exe = std::string(payload.substr(sizeof(wire::Hello)));
  info.protocol_version = hello.protocol_version;
  info.realtime_ns_at_hello = hello.realtime_ns_at_hello;
  info.interval_ms = hello.interval_ms;
  info.depth = hello.depth;
  info.mode = hello.mode;
  info.sample_mean_bytes = hello.sample_mean_bytes;
  hello_ = std::move(info);
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeImage(std::string_view payload) {
  if (!hello_.has_value() || hello_complete_) {
    return absl::InvalidArgumentError("an Image record must come right after the Hello");
  }
  // Later shims may append fields; the fixed part is what this collector reads.
  if (payload.size() < sizeof(wire::Image)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("payload of %d bytes is shorter than the %d-byte Image", payload.size(),
                        sizeof(wire::Image)));
  }
  const auto image = ReadAt<wire::Image>(payload, 0);
  hello_->image =
      HelloInfo::Image{.nonce = image.nonce, .connection_index = image.connection_index};
  hello_complete_ = true;
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeCensusBegin(std::string_view payload) {
  if (open_census_.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("census began before census %d ended", open_census_->sequence));
  }
  if (payload.size() != sizeof(wire::CensusBegin)) {
    return absl::InvalidArgumentError(absl::StrFormat("payload is %d bytes, expected %d",
                                                      payload.size(), sizeof(wire::CensusBegin)));
  }
  const auto begin = ReadAt<wire::CensusBegin>(payload, 0);
  if (last_sequence_.has_value() && begin.sequence <= *last_sequence_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sequence %d does not follow the previous census %d", begin.sequence, *last_sequence_));
  }
  if (saw_final_) return absl::InvalidArgumentError("census after the final census");
  Census census;
  census.sequence = begin.sequence;
  census.realtime_ns = begin.realtime_ns;
  census.monotonic_ns = begin.monotonic_ns;
  census.totals.rss_bytes = begin.rss_bytes;
  census.totals.fd_count = begin.fd_count;
  census.totals.thread_count = begin.thread_count;
  census.totals.censuses_dropped = begin.censuses_dropped;
  census.totals.sites_overflowed = begin.sites_overflowed;
  census.totals.table_overflowed = begin.table_overflowed;
  census.totals.untracked_releases = begin.untracked_releases;
  // Start from the carried-forward values; Counters records overwrite the sites that changed.
  // In changes-only mode the census starts empty and collects just those.
  if (!changes_only_) census.counters = counters_;
  census.limits = limits_;
  open_census_ = std::move(census);
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeModuleList(std::string_view payload) {
  if (!open_census_.has_value()) return absl::InvalidArgumentError("outside a census");
  if (payload.size() < sizeof(wire::ModuleListHeader)) {
    return absl::InvalidArgumentError("payload shorter than its header");
  }
  const auto header = ReadAt<wire::ModuleListHeader>(payload, 0);
  // Each entry needs at least its fixed part; checked up front so `count` cannot drive a huge
  // reserve().
  if (header.count > (payload.size() - sizeof(header)) / sizeof(wire::ModuleEntry)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("count %d does not fit in %d payload bytes", header.count, payload.size()));
  }
  auto modules = std::make_shared<ModuleList>();
  modules->reserve(header.count);
  if (header.unload_history != 0) {
    modules->has_unload_history = true;
    modules->unload_history_start = static_cast<uint16_t>(header.unload_history & 0xffffu);
    modules->unload_generation = static_cast<uint16_t>(header.unload_history >> 16);
  }
  size_t pos = sizeof(header);
  for (uint32_t i = 0; i < header.count; ++i) {
    if (payload.size() - pos < sizeof(wire::ModuleEntry)) {
      return absl::InvalidArgumentError(absl::StrFormat("entry %d is truncated", i));
    }
    const auto entry = ReadAt<wire::ModuleEntry>(payload, pos);
    pos += sizeof(entry);
    if (payload.size() - pos < entry.path_length) {
      return absl::InvalidArgumentError(
          absl::StrFormat("entry %d path_length %d overruns the payload", i, entry.path_length));
    }
    if (entry.end < entry.start) {
      return absl::InvalidArgumentError(absl::StrFormat("entry %d ends before it starts", i));
    }
    ModuleMapping mapping{.start = entry.start,
                          .end = entry.end,
                          .file_offset = entry.file_offset,
                          .flags = entry.flags,
                          .path = std::string(payload.substr(pos, entry.path_length)),
                          .build_id = {},
                          .deleted = false};
    // The kernel marks a mapped file that was unlinked or renamed over since it was mapped.
    constexpr std::string_view kDeleted = " (deleted)";
    if (mapping.path.ends_with(kDeleted)) {
      mapping.path.resize(mapping.path.size() - kDeleted.size());
      mapping.deleted = true;
    }
    modules->push_back(std::move(mapping));
    pos += entry.path_length;
  }
  if (pos != payload.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d trailing bytes after %d entries", payload.size() - pos, header.count));
  }
  amendable_modules_ = modules.get();
  modules_ = std::move(modules);
  open_census_->modules = modules_;
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeBuildIds(std::string_view payload, ModuleList* modules) {
  if (modules == nullptr) return absl::InvalidArgumentError("not right after a ModuleList");
  if (payload.size() < sizeof(wire::BuildIdsHeader)) {
    return absl::InvalidArgumentError("payload shorter than its header");
  }
  const auto header = ReadAt<wire::BuildIdsHeader>(payload, 0);
  size_t pos = sizeof(header);
  for (uint32_t i = 0; i < header.count; ++i) {
    if (payload.size() - pos < sizeof(wire::BuildIdEntry)) {
      return absl::InvalidArgumentError(absl::StrFormat("entry %d is truncated", i));
    }
    const auto entry = ReadAt<wire::BuildIdEntry>(payload, pos);
    pos += sizeof(entry);
    if (entry.length == 0 || entry.length > wire::kMaxBuildIdLength ||
        payload.size() - pos < entry.length) {
      return absl::InvalidArgumentError(
          absl::StrFormat("entry %d has a bad length %d", i, entry.length));
    }
    if (entry.module_index >= modules->size()) {
      return absl::InvalidArgumentError(absl::StrFormat("entry %d names module %d of %d", i,
                                                        entry.module_index, modules->size()));
    }
    (*modules)[entry.module_index].build_id =
        absl::BytesToHexString(absl::string_view(payload.data() + pos, entry.length));
    pos += entry.length;
  }
  if (pos != payload.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d trailing bytes after %d entries", payload.size() - pos, header.count));
  }
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeSiteDef(std::string_view payload) {
  if (!open_census_.has_value()) return absl::InvalidArgumentError("outside a census");
  if (payload.size() < sizeof(wire::SiteDef)) {
    return absl::InvalidArgumentError("payload shorter than its fixed part");
  }
  const auto def = ReadAt<wire::SiteDef>(payload, 0);
  if (def.site_id == wire::kUnattributedSite) {
    return absl::InvalidArgumentError("defines site id 0, which is reserved for unattributed");
  }
  if (def.depth > wire::kMaxDepth) {
    return absl::InvalidArgumentError(absl::StrFormat("site %d depth %d exceeds kMaxDepth %d",
                                                      def.site_id, def.depth, wire::kMaxDepth));
  }
  if (payload.size() != sizeof(def) + size_t{def.depth} * sizeof(uint64_t)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "site %d: payload is %d bytes, depth %d needs %d", def.site_id, payload.size(), def.depth,
        sizeof(def) + size_t{def.depth} * sizeof(uint64_t)));
  }
  SiteStack stack;
  stack.module_generation = def.module_generation;
  stack.return_addresses.resize(def.depth);
  if (def.depth > 0) {
    std::memcpy(stack.return_addresses.data(), payload.data() + sizeof(def),
                size_t{def.depth} * sizeof(uint64_t));
  }
  stack.modules = modules_;
  auto [it, inserted] = sites_.try_emplace(def.site_id, std::move(stack));
  if (!inserted && it->second.return_addresses != stack.return_addresses) {
    return absl::InvalidArgumentError(
        absl::StrFormat("site %d redefined with a different stack", def.site_id));
  }
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeCounters(std::string_view payload) {
  if (!open_census_.has_value()) return absl::InvalidArgumentError("outside a census");
  if (payload.size() < sizeof(wire::CountersHeader)) {
    return absl::InvalidArgumentError("payload shorter than its header");
  }
  const auto header = ReadAt<wire::CountersHeader>(payload, 0);
  const size_t body = payload.size() - sizeof(header);
  if (body % sizeof(wire::SiteCounter) != 0 || body / sizeof(wire::SiteCounter) != header.count) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "count %d does not match the %d payload bytes", header.count, payload.size()));
  }
  // A kind from a later protocol revision: skip it like an unknown record.
  if (header.kind >= wire::kKindCount) return absl::OkStatus();
  KindCounters& counters = open_census_->counters[header.kind];
  // The census holds only changes then: sized once, not rehashed as 100k sites arrive. (The
  // count was checked against the payload above.)
  if (changes_only_) counters.reserve(counters.size() + header.count);
  for (uint32_t i = 0; i < header.count; ++i) {
    const auto entry =
        ReadAt<wire::SiteCounter>(payload, sizeof(header) + size_t{i} * sizeof(wire::SiteCounter));
    if (entry.site_id != wire::kUnattributedSite && !sites_.contains(entry.site_id)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("counters for site %d, which was never defined", entry.site_id));
    }
    counters[entry.site_id] = SiteCounters{.acquired = entry.acquired,
                                           .released = entry.released,
                                           .acquired_bytes = entry.acquired_bytes,
                                           .released_bytes = entry.released_bytes,
                                           .detail = entry.detail};
  }
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeLimits(std::string_view payload) {
  if (!open_census_.has_value()) return absl::InvalidArgumentError("outside a census");
  if (payload.size() != sizeof(wire::Limits)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("payload is %d bytes, expected %d", payload.size(), sizeof(wire::Limits)));
  }
  const auto limits = ReadAt<wire::Limits>(payload, 0);
  // Sent once per census; should a shim send two, the later one wins.
  open_census_->limits = ProcessLimits{.nofile_soft = limits.nofile_soft,
                                       .nofile_hard = limits.nofile_hard,
                                       .nproc_soft = limits.nproc_soft,
                                       .pids_max = limits.pids_max,
                                       .threads_max = limits.threads_max,
                                       .memory_limit_bytes = limits.memory_limit_bytes,
                                       .memory_total_bytes = limits.memory_total_bytes,
                                       .address_space_bytes = limits.address_space_bytes};
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeThreadStates(std::string_view payload) {
  if (!open_census_.has_value()) return absl::InvalidArgumentError("outside a census");
  if (payload.size() < sizeof(wire::ThreadStatesHeader)) {
    return absl::InvalidArgumentError("payload shorter than its header");
  }
  const auto header = ReadAt<wire::ThreadStatesHeader>(payload, 0);
  // Each entry needs at least its fixed part; checked up front so `count` cannot drive a huge
  // reserve().
  if (header.count > (payload.size() - sizeof(header)) / sizeof(wire::ThreadSiteState)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("count %d does not fit in %d payload bytes", header.count, payload.size()));
  }
  ThreadStates& states = open_census_->thread_states;
  states.reserve(states.size() + header.count);
  size_t pos = sizeof(header);
  for (uint32_t i = 0; i < header.count; ++i) {
    if (payload.size() - pos < sizeof(wire::ThreadSiteState)) {
      return absl::InvalidArgumentError(absl::StrFormat("entry %d is truncated", i));
    }
    const auto entry = ReadAt<wire::ThreadSiteState>(payload, pos);
    pos += sizeof(entry);
    if (entry.wchan_length > kMaxWchanLength || payload.size() - pos < entry.wchan_length) {
      return absl::InvalidArgumentError(
          absl::StrFormat("entry %d (site %d) wchan_length %d overruns the payload or exceeds %d",
                          i, entry.site_id, entry.wchan_length, kMaxWchanLength));
    }
    // Entries for sites not (yet) defined are kept: they are only matched against reported
    // sites, and a stalled definition must not cost the whole connection.
    states[entry.site_id] =
        ThreadSiteState{.running = entry.running,
                        .sleeping = entry.sleeping,
                        .disk_sleeping = entry.disk_sleeping,
                        .stopped = entry.stopped,
                        .exited_unjoined = entry.exited_unjoined,
                        .longest_idle_ms = entry.longest_idle_ms,
                        .idle_over_minute = entry.idle_over_minute,
                        .wchan = std::string(payload.substr(pos, entry.wchan_length))};
    pos += entry.wchan_length;
  }
  if (pos != payload.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d trailing bytes after %d entries", payload.size() - pos, header.count));
  }
  open_census_->has_thread_states = true;
  return absl::OkStatus();
}

absl::Status CensusStreamDecoder::DecodeCensusEnd(std::string_view payload) {
  if (!open_census_.has_value()) return absl::InvalidArgumentError("without a CensusBegin");
  if (payload.size() != sizeof(wire::CensusEnd)) {
    return absl::InvalidArgumentError(absl::StrFormat("payload is %d bytes, expected %d",
                                                      payload.size(), sizeof(wire::CensusEnd)));
  }
  const auto end = ReadAt<wire::CensusEnd>(payload, 0);
  if (end.sequence != open_census_->sequence) {
    return absl::InvalidArgumentError(absl::StrFormat("sequence %d does not match CensusBegin's %d",
                                                      end.sequence, open_census_->sequence));
  }
  Census census = std::move(*open_census_);
  open_census_.reset();
  census.final = (end.flags & wire::kCensusFinal) != 0;
  if (census.modules == nullptr) census.modules = modules_;
  const uint64_t expected = last_sequence_.has_value() ? *last_sequence_ + 1 : 0;
  if (census.sequence > expected) sequence_gaps_ += census.sequence - expected;
  last_sequence_ = census.sequence;
  saw_final_ = census.final;
  if (changes_only_) {
    for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
      for (const auto& [site, values] : census.counters[kind]) counters_[kind][site] = values;
    }
  } else {
    counters_ = census.counters;
  }
  limits_ = census.limits;
  ready_.push_back(std::move(census));
  return absl::OkStatus();
}

}  // namespace dw::report
