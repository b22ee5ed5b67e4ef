// census_stream_builder.h: builds census byte streams (preload/wire_format.h) for tests.
//
// Used by the decoder tests to hand-build valid, truncated and corrupt streams, and by the fake
// census client that stands in for the shim in the run tests.
//
// Thread-safety: not thread-safe. Allocation: yes (test code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "preload/wire_format.h"
#include "report/transport/collector.h"

namespace dw::report::testing {

struct TestModule {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  uint32_t flags = wire::kModuleRead;
  std::string path;
};

class StreamBuilder {
 public:
  template <typename T>
  static std::string Bytes(const T& value) {
    std::string out(sizeof(T), '\0');
    std::memcpy(out.data(), &value, sizeof(T));
    return out;
  }

  StreamBuilder& Record(uint32_t type, std::string_view payload) {
    wire::RecordHeader header{type, static_cast<uint32_t>(payload.size())};
    bytes_ += Bytes(header);
    bytes_ += payload;
    return *this;
  }
  StreamBuilder& Record(wire::RecordType type, std::string_view payload) {
    return Record(static_cast<uint32_t>(type), payload);
  }

  StreamBuilder& Hello(uint32_t pid, uint32_t ppid, std::string_view exe,
                       uint32_t interval_ms = 1000, uint32_t magic = wire::kHelloMagic,
                       uint32_t version = wire::kProtocolVersion) {
    wire::Hello hello{};
    hello.magic = magic;
    hello.protocol_version = version;
    hello.pid = pid;
    hello.ppid = ppid;
    hello.start_time_ticks = 12345;
    hello.clock_ticks_per_second = 100;
    hello.realtime_ns_at_hello = 1'700'000'000'000'000'000;
    hello.interval_ms = interval_ms;
    hello.depth = 16;
    hello.mode = wire::kModeExact;
    hello.exe_length = static_cast<uint32_t>(exe.size());
    return Record(wire::RecordType::kHello, Bytes(hello) + std::string(exe));
  }

  StreamBuilder& Image(uint64_t nonce, uint32_t connection_index) {
    wire::Image image{};
    image.nonce = nonce;
    image.connection_index = connection_index;
    return Record(wire::RecordType::kImage, Bytes(image));
  }

  StreamBuilder& Begin(uint64_t sequence, uint64_t monotonic_ns, uint64_t rss_bytes = 1 << 20,
                       uint32_t fds = 4, uint32_t threads = 2) {
    wire::CensusBegin begin{};
    begin.sequence = sequence;
    begin.realtime_ns = 1'700'000'000'000'000'000 + monotonic_ns;
    begin.monotonic_ns = monotonic_ns;
    begin.rss_bytes = rss_bytes;
    begin.fd_count = fds;
    begin.thread_count = threads;
    return Record(wire::RecordType::kCensusBegin, Bytes(begin));
  }

  // `unload_history`: the header's second word (0: none, as from older shims).
  StreamBuilder& Modules(const std::vector<TestModule>& modules, uint32_t unload_history = 0) {
    wire::ModuleListHeader header{static_cast<uint32_t>(modules.size()), unload_history};
    std::string payload = Bytes(header);
    for (const TestModule& module : modules) {
      wire::ModuleEntry entry{module.start, module.end, module.file_offset, module.flags,
                              static_cast<uint32_t>(module.path.size())};
      payload += Bytes(entry);
      payload += module.path;
    }
    return Record(wire::RecordType::kModuleList, payload);
  }

  // One BuildIds record: (module_index, build-id bytes) per entry, each length set from its bytes.
  StreamBuilder& BuildIds(const std::vector<std::pair<uint32_t, std::string>>& ids) {
    wire::BuildIdsHeader header{static_cast<uint32_t>(ids.size()), 0};
    std::string payload = Bytes(header);
    for (const auto& [module_index, bytes] : ids) {
      wire::BuildIdEntry entry{module_index, static_cast<uint32_t>(bytes.size())};
      payload += Bytes(entry);
      payload += bytes;
    }
    return Record(wire::RecordType::kBuildIds, payload);
  }

  StreamBuilder& Site(uint32_t site_id, const std::vector<uint64_t>& frames) {
    wire::SiteDef def{site_id, static_cast<uint16_t>(frames.size()), 0};
    std::string payload = Bytes(def);
    for (uint64_t frame : frames) payload += Bytes(frame);
    return Record(wire::RecordType::kSiteDef, payload);
  }

  StreamBuilder& Counters(wire::Kind kind, const std::vector<wire::SiteCounter>& counters) {
    return Counters(static_cast<uint32_t>(kind), counters);
  }
  StreamBuilder& Counters(uint32_t kind, const std::vector<wire::SiteCounter>& counters) {
    wire::CountersHeader header{kind, static_cast<uint32_t>(counters.size())};
    std::string payload = Bytes(header);
    for (const wire::SiteCounter& counter : counters) payload += Bytes(counter);
    return Record(wire::RecordType::kCounters, payload);
  }

  StreamBuilder& Limits(const wire::Limits& limits) {
    return Record(wire::RecordType::kLimits, Bytes(limits));
  }

  // One ThreadStates record; each entry's wchan_length is set from its string.
  StreamBuilder& ThreadStates(
      const std::vector<std::pair<wire::ThreadSiteState, std::string>>& entries) {
    wire::ThreadStatesHeader header{static_cast<uint32_t>(entries.size()), 0};
    std::string payload = Bytes(header);
    for (auto [state, wchan] : entries) {
      state.wchan_length = static_cast<uint32_t>(wchan.size());
      payload += Bytes(state);
      payload += wchan;
    }
    return Record(wire::RecordType::kThreadStates, payload);
  }

  StreamBuilder& End(uint64_t sequence, uint32_t flags = 0) {
    wire::CensusEnd end{sequence, flags, 0};
    return Record(wire::RecordType::kCensusEnd, Bytes(end));
  }

  const std::string& bytes() const { return bytes_; }
  std::string Take() { return std::move(bytes_); }
  void Clear() { bytes_.clear(); }

 private:
  std::string bytes_;
};

inline wire::SiteCounter Counter(uint32_t site_id, uint64_t acquired, uint64_t released,
                                 uint64_t acquired_bytes, uint64_t released_bytes) {
  return wire::SiteCounter{site_id, 0, acquired, released, acquired_bytes, released_bytes};
}

// A counter of a count kind (threads, fds, timers) with its detail bits.
inline wire::SiteCounter CountCounter(uint32_t site_id, uint64_t acquired, uint64_t released,
                                      uint32_t detail = 0) {
  return wire::SiteCounter{site_id, detail, acquired, released, 0, 0};
}

inline wire::ThreadSiteState ThreadState(uint32_t site_id, uint32_t running, uint32_t sleeping,
                                         uint64_t longest_idle_ms = 0,
                                         uint32_t idle_over_minute = 0) {
  wire::ThreadSiteState state{};
  state.site_id = site_id;
  state.running = running;
  state.sleeping = sleeping;
  state.longest_idle_ms = longest_idle_ms;
  state.idle_over_minute = idle_over_minute;
  return state;
}

// What the collector makes of one connection that sent `stream` and closed: the decoding of a
// live connection, through the collector's offline connections.
inline ConnectionRecord RecordFromStream(std::string_view stream) {
  std::unique_ptr<Collector> collector = Collector::CreateOffline();
  const uint32_t connection = collector->OpenOffline();
  collector->FeedOffline(connection, stream);
  collector->EndOffline(connection, "");
  return std::move(collector->Finish().front());
}

}  // namespace dw::report::testing
