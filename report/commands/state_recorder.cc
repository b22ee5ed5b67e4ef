#include "report/commands/state_recorder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "report/analysis/live_processes.h"
#include "report/commands/recording.h"
#include "report/outputs/report_output.h"

namespace dw::report {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSegmentSuffix = ".dwrec.zst";
// Bytes buffered for a connection that has not said Hello yet; more is not a census stream.
constexpr size_t kMaxBeforeHello = 1 << 20;

// "20261202T021500Z".
std::string CompactUtc(double unix_s) {
  const time_t seconds = static_cast<time_t>(unix_s);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

// A file name from a process name: no '/', no control characters, no leading dot.
std::string SafeName(std::string_view name) {
  std::string safe;
  for (char c : name.substr(0, 64)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '+' || c == ':';
    safe += ok ? c : '_';
  }
  if (safe.empty() || safe[0] == '.') safe.insert(0, "_");
  return safe;
}

// The segment number at the start of a segment's file name, or -1.
int64_t SegmentNumber(const std::string& file_name) {
  if (!file_name.ends_with(kSegmentSuffix)) return -1;
  int64_t number = 0;
  size_t i = 0;
  for (; i < file_name.size() && file_name[i] >= '0' && file_name[i] <= '9'; ++i) {
    number = number * 10 + (file_name[i] - '0');
    if (number > (int64_t{1} << 40)) return -1;
  }
  return i == 0 ? -1 : number;
}

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string_view amount = text;
  uint64_t scale = 1;
  for (const auto& [suffix, factor] : {std::pair<std::string_view, uint64_t>{"GiB", 1ull << 30},
                                       {"MiB", 1ull << 20},
                                       {"KiB", 1ull << 10},
                                       {"B", 1}}) {
    if (amount.ends_with(suffix)) {
      amount.remove_suffix(suffix.size());
      scale = factor;
      break;
    }
  }
  uint64_t number = 0;
  if (!absl::SimpleAtoi(absl::string_view(amount.data(), amount.size()), &number) || number == 0 ||
      number > (uint64_t{1} << 50) / scale) {
    return absl::InvalidArgumentError(
        fmt::format("wants a byte amount (B, KiB, MiB or GiB, above 0), got '{}'", text));
  }
  return number * scale;
}

// One live connection and its current segment.
struct StateRecorder::Live {
  CensusCursor cursor;
  std::string before_hello;  // bytes received before the Hello named the process
  std::string process_dir;   // empty until the Hello
  std::string command;       // the executable, as the segments' run start says
  uint32_t pid = 0;
  bool ignored = false;  // not a census stream, or it failed: nothing more is written
  std::unique_ptr<ZstdFileWriter> segment;
  std::string segment_path;
  Clock::time_point segment_started{};
  uint64_t segment_started_monotonic_ns = 0;
  uint64_t raw_in_segment = 0;   // census bytes since the segment began
  uint64_t key_frame_bytes = 0;  // of the segment's key frame
  Clock::time_point last_flush{};
  Clock::time_point retry_at{};  // after a write error, no segment until then
  bool roll = false;             // roll at the next census end
  bool unrollable = false;       // its key frame is too large for a recording event
};

absl::StatusOr<std::unique_ptr<StateRecorder>> StateRecorder::Create(const StateOptions& options,
                                                                     const Collector& collector,
                                                                     Log log) {
  std::unique_ptr<StateRecorder> recorder(new StateRecorder(options, collector, std::move(log)));
  if (absl::Status status = recorder->TakeStock(); !status.ok()) return status;
  return recorder;
}

StateRecorder::StateRecorder(StateOptions options, const Collector& collector, Log log)
    : options_(std::move(options)), collector_(collector), log_(std::move(log)) {}

StateRecorder::~StateRecorder() = default;

// Creates DIR and lists the segments already there, oldest (by modification time) first.
absl::Status StateRecorder::TakeStock() {
  std::error_code error;
  fs::create_directories(options_.dir, error);
  if (error || !fs::is_directory(options_.dir)) {
    return absl::InvalidArgumentError(
        fmt::format("--state {}: cannot create the directory: {}", options_.dir, error.message()));
  }
  if (access(options_.dir.c_str(), W_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("--state {}: not writable: {}", options_.dir, std::strerror(errno)));
  }
  struct Found {
    Stored stored;
    fs::file_time_type time;
  };
  std::vector<Found> found;
  for (const fs::directory_entry& process : fs::directory_iterator(options_.dir, error)) {
    if (!process.is_directory(error)) continue;
    const std::string dir_name = process.path().filename().string();
    for (const fs::directory_entry& file : fs::directory_iterator(process.path(), error)) {
      const int64_t number = SegmentNumber(file.path().filename().string());
      if (number < 0 || !file.is_regular_file(error)) continue;
      uint32_t& next = next_sequence_[dir_name];
      next = std::max<uint32_t>(next, static_cast<uint32_t>(number + 1));
      found.push_back(
          {{file.path().string(), dir_name, file.file_size(error)}, file.last_write_time(error)});
    }
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.time < b.time; });
  for (Found& segment : found) {
    stored_bytes_ += segment.stored.bytes;
    process_bytes_[segment.stored.process_dir] += segment.stored.bytes;
    stored_.push_back(std::move(segment.stored));
  }
  EnforceCaps();
  return absl::OkStatus();
}

void StateRecorder::OnOpen(uint32_t connection) { live_[connection] = std::make_unique<Live>(); }

void StateRecorder::OnBytes(uint32_t connection, std::string_view bytes) {
  auto it = live_.find(connection);
  if (it == live_.end() || it->second->ignored) return;
  Live& live = *it->second;
  stats_.census_bytes += bytes.size();
  while (!bytes.empty()) {
    const size_t fed = live.cursor.FeedToCensusEnd(bytes);
    const std::string_view piece = bytes.substr(0, fed);
    bytes.remove_prefix(fed);
    if (live.process_dir.empty()) {
      live.before_hello.append(piece);
      if (!live.cursor.hello().has_value()) {
        if (live.before_hello.size() > kMaxBeforeHello || !live.cursor.status().ok()) {
          live.ignored = true;
          return;
        }
        continue;
      }
      if (!StartProcess(connection, live)) return;
    } else if (live.segment != nullptr) {
      WriteEvent(live,
                 EncodeConnectionEvent(RecordingEvent::kData, 0, ClockNs(CLOCK_MONOTONIC), piece));
      live.raw_in_segment += piece.size();
    }
    if (!live.cursor.status().ok()) {
      // Corrupt: the collector ends the connection here too. The segment keeps what it got.
      CloseSegment(live, {});
      live.ignored = true;
      return;
    }
    if (live.cursor.at_census_end() && RollDue(live)) Roll(live);
  }
}

// The Hello arrived: the process's directory, its first segment, what came so far.
bool StateRecorder::StartProcess(uint32_t connection, Live& live) {
  const ConnectionRecord* record = collector_.Peek(connection);
  const ProcessLabel label =
      LabelProcess(*live.cursor.hello(), record != nullptr ? record->names : std::nullopt);
  const double started = label.started_unix_s > 0
                             ? label.started_unix_s
                             : static_cast<double>(live.cursor.hello()->realtime_ns_at_hello) / 1e9;
  live.process_dir = fmt::format("{}-{}-{}", SafeName(label.name), label.pid, CompactUtc(started));
  live.command = label.exe;
  live.pid = label.pid;
  std::error_code error;
  fs::create_directories(fs::path(options_.dir) / live.process_dir, error);
  if (!OpenSegment(live, {}, Clock::now())) {
    live.before_hello.clear();
    return !live.ignored;
  }
  WriteEvent(live, EncodeConnectionEvent(RecordingEvent::kData, 0, ClockNs(CLOCK_MONOTONIC),
                                         live.before_hello));
  live.raw_in_segment += live.before_hello.size();
  live.before_hello.clear();
  live.before_hello.shrink_to_fit();
  return true;
}

bool StateRecorder::RollDue(const Live& live) const {
  if (live.segment == nullptr) return Clock::now() >= live.retry_at;  // after a failure
  if (live.roll) return true;
  return live.raw_in_segment >= std::max(options_.segment_bytes, live.key_frame_bytes) ||
         Clock::now() - live.segment_started >=
             std::chrono::duration<double>(options_.segment_seconds);
}

// At a census end: the key frame first, so that a process whose key frame cannot be an event
// (over 64 MiB: some 400k sites with deep stacks) keeps its segment growing instead of losing it.
void StateRecorder::Roll(Live& live) {
  live.roll = false;
  const auto started = Clock::now();
  std::string key = live.cursor.KeyFrame();
  if (key.empty() || live.unrollable) return;
  if (key.size() + 64 > kMaxRecordingEventLength) {
    live.unrollable = true;
    log_(
        fmt::format("state: {}: its key frame ({}) exceeds a recording event; its segment is "
                    "not rolled",
                    live.process_dir, FormatBytes(static_cast<double>(key.size()))));
    return;
  }
  CloseSegment(live, {});
  OpenSegment(live, std::move(key), started);
}

// A new segment: the file header, the run start, the connection's open, and `key` (the key
// frame) unless the stream starts in it.
bool StateRecorder::OpenSegment(Live& live, std::string key, Clock::time_point started) {
  live.roll = false;
  const bool key_frame = !key.empty();
  const uint32_t number = next_sequence_[live.process_dir]++;
  const std::string path =
      (fs::path(options_.dir) / live.process_dir /
       fmt::format("{:06}-{}{}", number, CompactUtc(NowUnix()), kSegmentSuffix))
          .string();
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    Failed(live,
           absl::InternalError(fmt::format("cannot create {}: {}", path, std::strerror(errno))));
    return false;
  }
  absl::StatusOr<std::unique_ptr<ZstdFileWriter>> writer =
      ZstdFileWriter::Create(fd, path, options_.level);
  if (!writer.ok()) {
    Failed(live, writer.status());
    return false;
  }
  live.segment = std::move(*writer);
  live.segment_path = path;
  live.segment_started = live.last_flush = started;
  live.segment_started_monotonic_ns = ClockNs(CLOCK_MONOTONIC);
  live.raw_in_segment = 0;
  live.key_frame_bytes = key.size();
  ++stats_.segments;
  RecordingStart start;
  start.command = {live.command};
  start.interval_ms = live.cursor.hello()->interval_ms;
  start.driftwatch_version = options_.driftwatch_version;
  // The shim's clock, of the first census the segment holds (the key frame's), or of the Hello:
  // what `report --since` selects segments by, before it reads their censuses.
  const uint64_t hello_ns = live.cursor.hello()->realtime_ns_at_hello;
  start.start_realtime_ns = key_frame      ? live.cursor.last_census()->realtime_ns
                            : hello_ns > 0 ? hello_ns
                                           : ClockNs(CLOCK_REALTIME);
  start.start_monotonic_ns = live.segment_started_monotonic_ns;
  WriteEvent(live, EncodeRecordingHeader() + EncodeRunStartEvent(start) +
                       EncodeConnectionEvent(RecordingEvent::kConnectionOpen, 0,
                                             start.start_monotonic_ns, {}));
  if (key_frame && live.segment != nullptr) {
    const Census& last = *live.cursor.last_census();
    WriteEvent(live, EncodeKeyFrameEvent(0, start.start_monotonic_ns, last.sequence,
                                         live.cursor.sequence_gaps(), key));
    ++stats_.key_frames;
    stats_.key_frame_bytes += key.size();
    stats_.key_frame_ms_max =
        std::max(stats_.key_frame_ms_max,
                 std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  }
  return live.segment != nullptr;
}

void StateRecorder::WriteEvent(Live& live, std::string_view event) {
  if (live.segment == nullptr) return;
  if (absl::Status status = live.segment->Write(event); !status.ok()) Failed(live, status);
}

// Bytes reached the disk (a flush or a close: a Write may stay in zstd's buffer).
void StateRecorder::Written() {
  if (!failing_) return;
  failing_ = false;
  log_(fmt::format("state: writing {} again", options_.dir));
}

// Logged once until a write succeeds again; the segment is closed as it stands.
void StateRecorder::Failed(Live& live, const absl::Status& status) {
  if (!failing_) {
    log_(fmt::format("state: {}; collection goes on, recording is retried every {} s",
                     std::string(status.message()), options_.retry_seconds));
    failing_ = true;
  }
  if (live.segment != nullptr) {
    stats_.compressed_bytes += live.segment->compressed_bytes();
    stored_.push_back({live.segment_path, live.process_dir, live.segment->compressed_bytes()});
    stored_bytes_ += stored_.back().bytes;
    process_bytes_[live.process_dir] += stored_.back().bytes;
    live.segment.reset();  // closes the fd; the file keeps what reached it
  }
  live.retry_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(options_.retry_seconds));
}

// Ends the segment: `close_event` (the connection's close, if it closed), the run end, the frame.
void StateRecorder::CloseSegment(Live& live, std::string_view close_event) {
  if (live.segment == nullptr) return;
  WriteEvent(live, close_event);
  RunResult end;
  end.child_pid = static_cast<pid_t>(live.pid);
  end.ended_by_us = true;  // not the process's exit status: driftwatch ended the segment
  end.duration_s =
      static_cast<double>(ClockNs(CLOCK_MONOTONIC) - live.segment_started_monotonic_ns) / 1e9;
  WriteEvent(live, EncodeRunEndEvent(end, ClockNs(CLOCK_MONOTONIC)));
  if (live.segment == nullptr) return;
  if (absl::Status status = live.segment->Close(); !status.ok()) {
    Failed(live, status);
    return;
  }
  Written();
  const uint64_t bytes = live.segment->compressed_bytes();
  stats_.compressed_bytes += bytes;
  stored_.push_back({live.segment_path, live.process_dir, bytes});
  stored_bytes_ += bytes;
  process_bytes_[live.process_dir] += bytes;
  live.segment.reset();
  EnforceCaps();
}

void StateRecorder::OnClose(uint32_t connection, std::string_view read_error) {
  auto it = live_.find(connection);
  if (it == live_.end()) return;
  Live& live = *it->second;
  if (!live.ignored && live.process_dir.empty() && live.cursor.hello().has_value()) {
    StartProcess(connection, live);
  }
  CloseSegment(live, EncodeConnectionEvent(RecordingEvent::kConnectionClose, 0,
                                           ClockNs(CLOCK_MONOTONIC), read_error));
  live_.erase(it);
}

void StateRecorder::Tick() {
  const auto now = Clock::now();
  const auto flush_every = std::chrono::duration<double>(options_.flush_seconds);
  for (auto& [id, live] : live_) {
    if (live->segment == nullptr) continue;
    if (now - live->last_flush >= flush_every && live->segment->dirty()) {
      live->last_flush = now;
      if (absl::Status status = live->segment->Flush(); !status.ok()) {
        Failed(*live, status);
      } else {
        Written();
      }
    }
  }
  // Live segments grow between rolls: the total cap is checked every few seconds too.
  if (now - last_caps_ >= std::chrono::seconds(5)) {
    last_caps_ = now;
    EnforceCaps();
  }
}

void StateRecorder::RollAll() {
  for (auto& [id, live] : live_) live->roll = true;
}

void StateRecorder::Close() {
  for (auto& [id, live] : live_) CloseSegment(*live, {});
  live_.clear();
  log_(fmt::format(
      "state: {} segments, {} of census data in {} compressed ({:.1f}x); {} key frames, "
      "{} in all, the slowest {:.1f} ms; {} old segments deleted by the caps",
      stats_.segments, FormatBytes(static_cast<double>(stats_.census_bytes)),
      FormatBytes(static_cast<double>(stats_.compressed_bytes)),
      stats_.compressed_bytes > 0
          ? static_cast<double>(stats_.census_bytes) / static_cast<double>(stats_.compressed_bytes)
          : 0.0,
      stats_.key_frames, FormatBytes(static_cast<double>(stats_.key_frame_bytes)),
      stats_.key_frame_ms_max, stats_.deleted_segments));
}

void StateRecorder::Delete(std::list<Stored>::iterator it) {
  if (unlink(it->path.c_str()) != 0 && errno != ENOENT) {
    log_(fmt::format("state: cannot delete {}: {}", it->path, std::strerror(errno)));
  }
  stored_bytes_ -= it->bytes;
  uint64_t& process = process_bytes_[it->process_dir];
  process -= std::min(process, it->bytes);
  if (process == 0) {
    process_bytes_.erase(it->process_dir);
    // Empty once its last segment is gone, unless a live process still writes there.
    rmdir((fs::path(options_.dir) / it->process_dir).c_str());
  }
  stored_.erase(it);
  ++stats_.deleted_segments;
}

// Oldest closed segments go first: of a process over its cap, then of DIR over the total cap
// (live segments count, but are never deleted).
void StateRecorder::EnforceCaps() {
  for (auto it = stored_.begin(); it != stored_.end();) {
    auto next = std::next(it);
    if (process_bytes_[it->process_dir] > options_.process_max_bytes) Delete(it);
    it = next;
  }
  uint64_t live_bytes = 0;
  for (const auto& [id, live] : live_) {
    if (live->segment != nullptr) live_bytes += live->segment->compressed_bytes();
  }
  while (!stored_.empty() && stored_bytes_ + live_bytes > options_.max_bytes) {
    Delete(stored_.begin());
  }
  if (stored_bytes_ + live_bytes > options_.max_bytes && !said_over_cap_) {
    said_over_cap_ = true;
    log_(fmt::format("state: the live segments alone take {} of --state-max-bytes {}",
                     FormatBytes(static_cast<double>(live_bytes)),
                     FormatBytes(static_cast<double>(options_.max_bytes))));
  }
}

}  // namespace dw::report
