// census_encoder.h: the collector's census encoder and census-boundary cursor, for key frames.
//
// A census stream is stateful: one Hello, SiteDefs only for stacks not yet defined on the
// connection, a ModuleList only when the modules changed, Counters only for sites that changed.
// Its bytes from the middle on cannot be decoded alone. `driftwatch collect --state` cuts a
// connection's stream into segments that must each be replayable, so each segment after the
// first opens with a key frame: a Hello and one synthetic census, encoded here from the decoded
// state, that define every site, its module list and build ids, and carry every site's counters,
// the last census's totals, limits and thread states. Decoding the key frame gives back the
// state it was made from (census_encoder_test checks decode(keyframe) == state); the raw bytes
// that follow then decode as they did live.
//
// CensusCursor follows one connection's bytes with its own decoder (counters carried forward
// once, O(changed sites) per census) and stops at every census end, so that a caller can cut a
// stream between censuses (roll a segment, start or end a replay window) and make a key frame
// there.
//
// Thread-safety: not thread-safe; one cursor per connection, used by one thread. Allocation: yes
// (collector code). Never runs inside a hook.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "report/decode/census.h"
#include "report/decode/census_stream.h"

namespace dw::report {

// The Hello record of `hello`, header included.
std::string EncodeHello(const HelloInfo& hello);

// One census record sequence (CensusBegin .. CensusEnd) that defines every site of `sites` and
// carries every site's `counters`, with `last`'s sequence, times, totals, limits, thread states
// and final flag (its own counters are not used). Each module list the sites were defined under
// is sent before their SiteDefs (oldest first, by the lowest site id using it) and `last`'s list
// last, so sites defined before a dlclose keep the modules of their time.
std::string EncodeStateCensus(const Census& last,
                              const absl::flat_hash_map<uint32_t, SiteStack>& sites,
                              const std::array<KindCounters, wire::kKindCount>& counters);

// Follows one connection's census stream and stops at census ends.
class CensusCursor {
 public:
  CensusCursor() { decoder_.set_changes_only(true); }
  CensusCursor(const CensusCursor&) = delete;
  CensusCursor& operator=(const CensusCursor&) = delete;

  // Feeds the bytes of `bytes` up to and including the end of the next CensusEnd record, or all
  // of them; returns how many it fed. at_census_end() then says whether they ended a census.
  size_t FeedToCensusEnd(std::string_view bytes);
  bool at_census_end() const { return at_census_end_; }
  // The decoder's error once the stream turned out corrupt (nothing more is decoded then).
  const absl::Status& status() const { return status_; }

  const std::optional<HelloInfo>& hello() const { return decoder_.hello(); }
  // The last complete census without its counters (sequence, times, totals, limits, modules,
  // thread states); absent before the first.
  const std::optional<Census>& last_census() const { return last_; }
  uint64_t sequence_gaps() const { return decoder_.sequence_gaps(); }
  size_t site_count() const { return decoder_.sites().size(); }

  // The Hello and a census that recreate the decoded state as of the last census end. Empty
  // before the first complete census.
  std::string KeyFrame() const;

 private:
  CensusStreamDecoder decoder_;
  absl::Status status_;
  std::optional<Census> last_;
  // Record framing: how far into the current record's header or payload the stream is.
  char header_[sizeof(wire::RecordHeader)] = {};
  size_t header_have_ = 0;
  uint64_t payload_left_ = 0;
  uint32_t record_type_ = 0;
  bool at_census_end_ = false;
};

}  // namespace dw::report
