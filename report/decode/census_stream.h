// census_stream.h: incremental decoder for one census connection (see preload/wire_format.h).
//
// The collector reads a socket in arbitrary chunks; Feed() accepts any split of the byte stream,
// validates every record and turns complete censuses into Census values with counters (and
// limits) carried forward; thread states are kept per census. Carrying every site's counters
// into every census costs O(sites) per census; a decoder set to changes only
// (set_changes_only) gives each Census the counters of the sites that census changed, and keeps
// the carried-forward counters of all sites in counters() (O(changed sites) per census). A corrupt
// stream yields an error Status and the decoder stays failed, so one bad connection never poisons
// the others.
//
// Thread-safety: not thread-safe; one decoder per connection, used by one thread.
// Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "report/decode/census.h"

namespace dw::report {

// Longest wait channel name accepted in a ThreadStates entry (kernel symbol names are shorter;
// KSYM_NAME_LEN is 512 since Linux 6.1). Longer means a corrupt stream.
inline constexpr uint32_t kMaxWchanLength = 512;

class CensusStreamDecoder {
 public:
  CensusStreamDecoder() = default;
  CensusStreamDecoder(const CensusStreamDecoder&) = delete;
  CensusStreamDecoder& operator=(const CensusStreamDecoder&) = delete;

  // Appends `bytes` and decodes every complete record. On a protocol violation returns an error
  // that names the record and offset; every later call returns the same error.
  absl::Status Feed(std::string_view bytes);

  // Called at EOF. OK when the stream ended between censuses; otherwise an error describing the
  // truncation (a process killed mid-census does that; complete censuses stay valid).
  absl::Status Finish() const;

  // The Hello, once it has been decoded.
  const std::optional<HelloInfo>& hello() const { return hello_; }
  // True once a record after the Hello was decoded: the Image, if the shim sends one, comes
  // right after the Hello, so from then on hello() says all it will.
  bool hello_complete() const { return hello_complete_; }

  // Complete censuses decoded since the last call, oldest first.
  std::vector<Census> TakeCensuses();

  // From now on each Census carries in `counters` only the sites its Counters records changed
  // (the stream's own deltas); counters() holds every site's latest values. Set before Feed().
  void set_changes_only(bool changes_only) { changes_only_ = changes_only; }
  // Every site's counters as of the last complete census, carried forward.
  const std::array<KindCounters, wire::kKindCount>& counters() const { return counters_; }
  std::array<KindCounters, wire::kKindCount> TakeCounters() { return std::exchange(counters_, {}); }

  // Every site defined on this connection so far.
  const absl::flat_hash_map<uint32_t, SiteStack>& sites() const { return sites_; }
  // Hands the sites over (the connection has ended): sites() is empty afterwards.
  absl::flat_hash_map<uint32_t, SiteStack> TakeSites() { return std::exchange(sites_, {}); }

  // Censuses the stream says were dropped: gaps in sequence numbers.
  uint64_t sequence_gaps() const { return sequence_gaps_; }
  // True once a census flagged kCensusFinal completed.
  bool saw_final() const { return saw_final_; }
  // Total bytes fed so far.
  uint64_t bytes_consumed() const { return stream_offset_; }

 private:
  absl::Status DecodeRecord(uint32_t type, std::string_view payload);
  absl::Status DecodeHello(std::string_view payload);
  absl::Status DecodeImage(std::string_view payload);
  absl::Status DecodeCensusBegin(std::string_view payload);
  absl::Status DecodeModuleList(std::string_view payload);
  absl::Status DecodeBuildIds(std::string_view payload, ModuleList* modules);
  absl::Status DecodeSiteDef(std::string_view payload);
  absl::Status DecodeCounters(std::string_view payload);
  absl::Status DecodeCensusEnd(std::string_view payload);
  absl::Status DecodeLimits(std::string_view payload);
  absl::Status DecodeThreadStates(std::string_view payload);
  absl::Status Fail(absl::Status status);

  std::string buffer_;          // bytes not yet decoded
  uint64_t stream_offset_ = 0;  // offset in the stream of buffer_[0], for error messages
  absl::Status error_;

  std::optional<HelloInfo> hello_;
  bool hello_complete_ = false;
  ModuleListPtr modules_;
  // The ModuleList decoded by the previous record, while a BuildIds record may still amend it.
  ModuleList* amendable_modules_ = nullptr;
  absl::flat_hash_map<uint32_t, SiteStack> sites_;
  std::array<KindCounters, wire::kKindCount> counters_;  // carried forward across censuses
  std::optional<ProcessLimits> limits_;                  // carried forward across censuses
  std::optional<Census> open_census_;                    // between CensusBegin and CensusEnd
  std::optional<uint64_t> last_sequence_;
  uint64_t sequence_gaps_ = 0;
  bool saw_final_ = false;
  bool changes_only_ = false;
  std::vector<Census> ready_;
};

}  // namespace dw::report
