#include "report/commands/state_replay.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "report/decode/census_encoder.h"

namespace dw::report {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSegmentSuffix = ".dwrec.zst";
constexpr uint64_t kSecond = 1'000'000'000;

// "-1d12h", "-90m": seconds, or nullopt.
std::optional<int64_t> ParseRelative(std::string_view text) {
  if (text.size() < 3 || text[0] != '-') return std::nullopt;
  int64_t total = 0;
  size_t i = 1;
  while (i < text.size()) {
    int64_t number = 0;
    const size_t digits = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
      number = number * 10 + (text[i++] - '0');
      if (number > 1'000'000'000) return std::nullopt;
    }
    if (i == digits || i == text.size()) return std::nullopt;
    const char unit = text[i++];
    const int64_t scale = unit == 'd'   ? 86400
                          : unit == 'h' ? 3600
                          : unit == 'm' ? 60
                          : unit == 's' ? 1
                                        : 0;
    if (scale == 0) return std::nullopt;
    total += number * scale;
  }
  return total;
}

// RFC 3339: seconds since the epoch (with fraction), or nullopt.
std::optional<double> ParseRfc3339(std::string_view text) {
  tm parts{};
  std::string copy(text);
  if (copy.size() > 10 && copy[10] == ' ') copy[10] = 'T';
  const char* rest = strptime(copy.c_str(), "%Y-%m-%dT%H:%M", &parts);
  if (rest == nullptr) return std::nullopt;
  double fraction = 0;
  if (*rest == ':') {
    rest = strptime(rest, ":%S", &parts);
    if (rest == nullptr) return std::nullopt;
    if (*rest == '.') {
      double scale = 0.1;
      for (++rest; std::isdigit(static_cast<unsigned char>(*rest)) != 0; ++rest, scale /= 10) {
        fraction += (*rest - '0') * scale;
      }
    }
  }
  int64_t offset_s = 0;
  if (*rest == 'Z' || *rest == 'z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    int hours = 0, minutes = 0;
    const int sign = *rest == '-' ? -1 : 1;
    if (std::sscanf(rest + 1, "%2d:%2d", &hours, &minutes) != 2) return std::nullopt;
    offset_s = sign * (hours * 3600 + minutes * 60);
    rest += 6;
  } else {
    return std::nullopt;  // a time zone is required: "02:00" on a server means UTC or local?
  }
  if (*rest != '\0') return std::nullopt;
  return static_cast<double>(timegm(&parts) - offset_s) + fraction;
}

// The segments of one process directory, in order.
std::vector<std::string> SegmentsIn(const fs::path& dir) {
  std::vector<std::pair<uint64_t, std::string>> numbered;
  std::error_code error;
  for (const fs::directory_entry& file : fs::directory_iterator(dir, error)) {
    const std::string name = file.path().filename().string();
    uint64_t number = 0;
    const size_t dash = name.find('-');
    if (!name.ends_with(kSegmentSuffix) || dash == std::string::npos ||
        !absl::SimpleAtoi(name.substr(0, dash), &number) || !file.is_regular_file(error)) {
      continue;
    }
    numbered.emplace_back(number, file.path().string());
  }
  std::sort(numbered.begin(), numbered.end());
  std::vector<std::string> paths;
  for (auto& [number, path] : numbered) paths.push_back(std::move(path));
  return paths;
}

// Each group is one process directory's segments (a single file is a group of one).
absl::StatusOr<std::vector<std::vector<std::string>>> ListSegments(const std::string& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) return std::vector<std::vector<std::string>>{{path}};
  std::vector<std::vector<std::string>> groups;
  if (std::vector<std::string> own = SegmentsIn(path); !own.empty()) groups.push_back(own);
  std::vector<std::string> subdirs;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
    if (entry.is_directory(error)) subdirs.push_back(entry.path().string());
  }
  std::sort(subdirs.begin(), subdirs.end());
  for (const std::string& dir : subdirs) {
    if (std::vector<std::string> segments = SegmentsIn(dir); !segments.empty()) {
      groups.push_back(std::move(segments));
    }
  }
  if (groups.empty()) {
    return absl::NotFoundError(absl::StrCat(
        path,
        ": no segments (NNNNNN-TIME.dwrec.zst, written by 'collect --state') in it or in "
        "its subdirectories"));
  }
  return groups;
}

// One replayed stream: a connection followed across segments.
struct Chain {
  CensusCursor cursor;
  std::optional<uint32_t> out;  // the offline connection, once in the window
  std::string pending;          // bytes of a census not yet complete
  int64_t gap_offset = 0;       // sequence gaps the cursor miscounts (it started at a key frame)
  bool done = false;            // past the window, closed, or corrupt
  bool closed = false;
};

class StateReplay {
 public:
  StateReplay(const ReplayWindow& window, ReplayedRun& replay)
      : window_(window), replay_(replay), collector_(Collector::CreateOffline()) {}

  absl::Status ReplayFile(const std::string& path);
  std::vector<ConnectionRecord> Finish();
  bool any_census() const { return first_ns_ != 0; }
  double duration_s() const {
    return last_ns_ > first_ns_ ? static_cast<double>(last_ns_ - first_ns_) / 1e9 : 0;
  }

 private:
  absl::Status Event(RecordingFile& file, uint32_t type, uint64_t offset, std::string_view payload);
  Chain* ChainFor(const std::string& path, const ConnectionEventView& key_frame);
  void Feed(Chain& chain, std::string_view bytes);
  void Emit(Chain& chain, std::string_view bytes);
  void StartEmitting(Chain& chain);

  const ReplayWindow& window_;
  ReplayedRun& replay_;
  std::unique_ptr<Collector> collector_;
  std::vector<std::unique_ptr<Chain>> chains_;
  absl::flat_hash_map<uint32_t, Chain*> file_connections_;  // of the file being read
  absl::flat_hash_map<uint32_t, int64_t> gap_adjustments_;
  uint64_t first_ns_ = 0, last_ns_ = 0;  // monotonic times of the first and last census replayed
};

absl::Status StateReplay::ReplayFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<RecordingFile>> opened = RecordingFile::Open(path);
  if (!opened.ok()) return opened.status();
  RecordingFile& file = **opened;
  if (replay_.start.command.empty()) replay_.start = file.start();
  file_connections_.clear();
  uint32_t type = 0;
  uint64_t offset = 0;
  std::string payload;
  while (true) {
    absl::StatusOr<bool> more = file.Next(type, payload, offset);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (absl::Status status = Event(file, type, offset, payload); !status.ok()) return status;
  }
  for (std::string& warning : file.warnings()) replay_.warnings.push_back(std::move(warning));
  return absl::OkStatus();
}

absl::Status StateReplay::Event(RecordingFile& file, uint32_t type, uint64_t offset,
                                std::string_view payload) {
  const auto event_type = static_cast<RecordingEvent>(type);
  if (event_type == RecordingEvent::kRunStart) return file.Error(offset, "a second run start");
  if (event_type != RecordingEvent::kConnectionOpen && event_type != RecordingEvent::kData &&
      event_type != RecordingEvent::kConnectionClose && event_type != RecordingEvent::kKeyFrame) {
    return absl::OkStatus();  // the run end (a segment's end says nothing of the process), later
                              // types
  }
  absl::StatusOr<ConnectionEventView> event = file.ParseConnectionEvent(type, offset, payload);
  if (!event.ok()) return event.status();
  if (event_type == RecordingEvent::kConnectionOpen) {
    file_connections_[event->connection] = nullptr;
    return absl::OkStatus();
  }
  auto it = file_connections_.find(event->connection);
  if (it == file_connections_.end()) {
    return file.Error(
        offset, absl::StrCat("event for connection ", event->connection, ", which never opened"));
  }
  if (event_type == RecordingEvent::kKeyFrame) {
    if (it->second == nullptr) it->second = ChainFor(file.path(), *event);
    return absl::OkStatus();
  }
  if (it->second == nullptr) {  // the stream starts here, with its Hello
    chains_.push_back(std::make_unique<Chain>());
    it->second = chains_.back().get();
  }
  Chain& chain = *it->second;
  if (event_type == RecordingEvent::kData) {
    Feed(chain, event->rest);
  } else if (!chain.closed) {
    chain.closed = true;
    if (chain.out.has_value() && !chain.done) {
      Emit(chain, chain.pending);
      collector_->EndOffline(*chain.out, event->rest);
    }
    chain.done = true;
  }
  return absl::OkStatus();
}

// The stream a key frame continues (same Hello, the sequence of its last census), or a new one
// started from the key frame.
Chain* StateReplay::ChainFor(const std::string& path, const ConnectionEventView& key_frame) {
  bool same_process = false;
  for (const std::unique_ptr<Chain>& chain : chains_) {
    if (chain->closed || !chain->cursor.hello().has_value()) continue;
    if (!key_frame.rest.starts_with(EncodeHello(*chain->cursor.hello()))) continue;
    same_process = true;
    // Its key frame recreates what the stream already holds: skipped. A stream past the window
    // takes the rest of its segments unread.
    if (chain->done || (chain->cursor.last_census().has_value() &&
                        chain->cursor.last_census()->sequence == key_frame.sequence)) {
      return chain.get();
    }
  }
  if (same_process) {
    replay_.warnings.push_back(
        absl::StrCat(path, ": does not continue the segment before it (its key frame is census ",
                     key_frame.sequence,
                     "): censuses are missing between them (a segment deleted by the "
                     "caps or not written); replayed as a separate series"));
  }
  chains_.push_back(std::make_unique<Chain>());
  Chain& chain = *chains_.back();
  chain.gap_offset =
      static_cast<int64_t>(key_frame.sequence_gaps) - static_cast<int64_t>(key_frame.sequence);
  Feed(chain, key_frame.rest);
  return &chain;
}

void StateReplay::Emit(Chain& chain, std::string_view bytes) {
  if (!bytes.empty()) collector_->FeedOffline(*chain.out, bytes);
  chain.pending.clear();
}

// The first census in the window: the offline connection begins with a key frame of the state
// as of that census.
void StateReplay::StartEmitting(Chain& chain) {
  chain.out = collector_->OpenOffline();
  const Census& census = *chain.cursor.last_census();
  // The offline decoder counts the censuses before this one as dropped; they were not all.
  gap_adjustments_[*chain.out] = static_cast<int64_t>(chain.cursor.sequence_gaps()) +
                                 chain.gap_offset - static_cast<int64_t>(census.sequence);
  collector_->FeedOffline(*chain.out, chain.cursor.KeyFrame());
}

void StateReplay::Feed(Chain& chain, std::string_view bytes) {
  while (!bytes.empty() && !chain.done) {
    const size_t fed = chain.cursor.FeedToCensusEnd(bytes);
    if (chain.out.has_value()) chain.pending.append(bytes.substr(0, fed));
    bytes.remove_prefix(fed);
    if (chain.cursor.at_census_end()) {
      const Census& census = *chain.cursor.last_census();
      if (window_.until_ns.has_value() && census.realtime_ns > *window_.until_ns) {
        chain.done = true;  // past the window: this census and what follows are left out
        break;
      }
      if (!chain.out.has_value()) {
        if (!window_.since_ns.has_value() || census.realtime_ns >= *window_.since_ns) {
          StartEmitting(chain);
        }
      } else {
        Emit(chain, chain.pending);
      }
      if (chain.out.has_value()) {
        if (first_ns_ == 0) first_ns_ = census.monotonic_ns;
        first_ns_ = std::min(first_ns_, census.monotonic_ns);
        last_ns_ = std::max(last_ns_, census.monotonic_ns);
      }
    }
    if (!chain.cursor.status().ok()) {
      // Corrupt: the live collector saw the same bytes and ended the connection there.
      if (chain.out.has_value()) Emit(chain, chain.pending);
      chain.done = true;
    }
  }
}

std::vector<ConnectionRecord> StateReplay::Finish() {
  // A census cut off at the end (the collector was killed): the decoder says so, as live.
  for (const std::unique_ptr<Chain>& chain : chains_) {
    if (chain->out.has_value() && !chain->done) Emit(*chain, chain->pending);
  }
  std::vector<ConnectionRecord> records = collector_->Finish();
  AdjustSequenceGaps(records, gap_adjustments_);
  return records;
}

// The segments of `group` that may hold censuses of the window: from the last one whose first
// census was taken at or before `since` to the last one whose first census was taken at or
// before `until` (a segment's run start is the time of its first census, by the shim's clock).
absl::StatusOr<std::vector<std::string>> InWindow(const std::vector<std::string>& group,
                                                  const ReplayWindow& window) {
  if (window.empty() || group.size() < 2) return group;
  size_t first = 0, end = group.size();
  for (size_t i = 0; i < group.size(); ++i) {
    absl::StatusOr<std::unique_ptr<RecordingFile>> file = RecordingFile::Open(group[i]);
    if (!file.ok()) return file.status();
    const uint64_t began = (*file)->start().start_realtime_ns;
    if (window.until_ns.has_value() && began > *window.until_ns) {
      end = std::max<size_t>(i, 1);
      break;
    }
    if (window.since_ns.has_value() && began <= *window.since_ns) first = i;
  }
  first = std::min(first, end - 1);
  return std::vector<std::string>(group.begin() + static_cast<ptrdiff_t>(first),
                                  group.begin() + static_cast<ptrdiff_t>(end));
}

}  // namespace

absl::StatusOr<uint64_t> ParseReplayTime(std::string_view text, uint64_t now_ns) {
  if (text == "now") return now_ns;
  if (std::optional<int64_t> relative = ParseRelative(text); relative.has_value()) {
    const uint64_t back = static_cast<uint64_t>(*relative) * kSecond;
    return back < now_ns ? now_ns - back : 0;
  }
  if (std::optional<double> seconds = ParseRfc3339(text); seconds.has_value() && *seconds >= 0) {
    return static_cast<uint64_t>(*seconds * 1e9);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", std::string(text),
                   "' is not a time: give RFC 3339 with a zone (2026-12-02T02:00:00Z, "
                   "2026-12-02T03:00:00+01:00) or a time before now (-2h, -90m, -1d12h, now)"));
}

absl::StatusOr<ReplayedRun> ReplayPath(const std::string& path, const ReplayWindow& window,
                                       const AnalysisOptions& analysis) {
  std::error_code error;
  if (window.empty() && !fs::is_directory(path, error)) return ReplayRecording(path, analysis);
  if (window.since_ns.has_value() && window.until_ns.has_value() &&
      *window.since_ns > *window.until_ns) {
    return absl::InvalidArgumentError("--since is after --until");
  }
  absl::StatusOr<std::vector<std::vector<std::string>>> groups = ListSegments(path);
  if (!groups.ok()) return groups.status();
  ReplayedRun replay;
  StateReplay state(window, replay);
  for (const std::vector<std::string>& group : *groups) {
    absl::StatusOr<std::vector<std::string>> segments = InWindow(group, window);
    if (!segments.ok()) return segments.status();
    for (const std::string& segment : *segments) {
      if (absl::Status status = state.ReplayFile(segment); !status.ok()) return status;
    }
  }
  if (!state.any_census()) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no census ", window.empty() ? "in it" : "in the window"));
  }
  RunResult& result = replay.result;
  result.command = replay.start.command;
  result.interval_ms = replay.start.interval_ms;
  result.ended_by_us = true;  // what the segments hold ends where they end, not with an exit
  result.duration_s = state.duration_s();
  replay.complete = true;
  AnalyzeCollected(state.Finish(), analysis, result);
  return replay;
}

}  // namespace dw::report
