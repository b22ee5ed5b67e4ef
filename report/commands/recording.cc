#include "report/commands/recording.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "report/commands/zstd_stream.h"

namespace dw::report {
namespace {

// File header: the magic, then u32 format version, u32 reserved.
constexpr size_t kFileHeaderSize = 16;
// Event header: u32 type, u32 payload length (like the census protocol's records).
constexpr size_t kEventHeaderSize = 8;
// Fixed parts of the events.
constexpr size_t kRunStartFixed = 32;    // realtime, monotonic, interval, argc, version length, -
constexpr size_t kConnectionFixed = 16;  // connection id, reserved, monotonic receive time
constexpr size_t kKeyFrameFixed = 32;    // the same, then census sequence, sequence gaps
constexpr size_t kRunEndFixed = 40;      // monotonic, duration bits, pid, flags, code, signal, ...
constexpr uint32_t kRunEndSignaled = 1, kRunEndEndedByUs = 2;

// Little-endian appends; driftwatch only runs on x86-64, so memory order is the file order.
template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Bounds-checked little-endian reads from one event's payload.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T& value) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(size_t length, std::string& value) {
    if (bytes_.size() - pos_ < length) return false;
    value.assign(bytes_.substr(pos_, length));
    pos_ += length;
    return true;
  }
  std::string_view Rest() const { return bytes_.substr(pos_); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

const char* EventName(uint32_t type) {
  switch (static_cast<RecordingEvent>(type)) {
    case RecordingEvent::kRunStart:
      return "run start";
    case RecordingEvent::kConnectionOpen:
      return "connection open";
    case RecordingEvent::kData:
      return "data";
    case RecordingEvent::kConnectionClose:
      return "connection close";
    case RecordingEvent::kRunEnd:
      return "run end";
    case RecordingEvent::kKeyFrame:
      return "key frame";
  }
  return "unknown";
}

absl::Status ParseRunStart(const RecordingFile& reader, uint64_t offset, std::string_view payload,
                           RecordingStart& start) {
  Cursor cursor(payload);
  uint32_t argc = 0, version_length = 0, reserved = 0;
  if (!cursor.Get(start.start_realtime_ns) || !cursor.Get(start.start_monotonic_ns) ||
      !cursor.Get(start.interval_ms) || !cursor.Get(argc) || !cursor.Get(version_length) ||
      !cursor.Get(reserved) || !cursor.GetString(version_length, start.driftwatch_version)) {
    return reader.Error(offset, "run start event too short: corrupt recording");
  }
  for (uint32_t i = 0; i < argc; ++i) {
    uint32_t length = 0;
    std::string arg;
    if (!cursor.Get(length) || !cursor.GetString(length, arg)) {
      return reader.Error(offset, absl::StrCat("run start event: argument ", i, " of ", argc,
                                               " cut off: corrupt recording"));
    }
    start.command.push_back(std::move(arg));
  }
  return absl::OkStatus();
}

absl::Status ParseRunEnd(const RecordingFile& reader, uint64_t offset, std::string_view payload,
                         RunResult& result, uint64_t& monotonic_ns) {
  Cursor cursor(payload);
  uint64_t duration_bits = 0;
  uint32_t pid = 0, flags = 0, shim_length = 0, reserved = 0;
  int32_t code = 0, signal = 0;
  if (!cursor.Get(monotonic_ns) || !cursor.Get(duration_bits) || !cursor.Get(pid) ||
      !cursor.Get(flags) || !cursor.Get(code) || !cursor.Get(signal) || !cursor.Get(shim_length) ||
      !cursor.Get(reserved) || !cursor.GetString(shim_length, result.shim_path)) {
    return reader.Error(offset, "run end event too short: corrupt recording");
  }
  // The double's bits, not a rounded number: the replayed report must print the same duration.
  result.duration_s = std::bit_cast<double>(duration_bits);
  result.child_pid = static_cast<pid_t>(pid);
  result.child_exit.signaled = (flags & kRunEndSignaled) != 0;
  result.child_exit.code = code;
  result.child_exit.signal = signal;
  result.ended_by_us = (flags & kRunEndEndedByUs) != 0;
  return absl::OkStatus();
}

std::string Event(RecordingEvent type, std::string_view fixed, std::string_view tail) {
  std::string event;
  event.reserve(kEventHeaderSize + fixed.size() + tail.size());
  Put<uint32_t>(event, static_cast<uint32_t>(type));
  Put<uint32_t>(event, static_cast<uint32_t>(fixed.size() + tail.size()));
  event.append(fixed);
  event.append(tail);
  return event;
}

}  // namespace

uint64_t ClockNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

std::string EncodeRecordingHeader() {
  std::string header(kRecordingMagic, sizeof(kRecordingMagic));
  Put<uint32_t>(header, kRecordingFormatVersion);
  Put<uint32_t>(header, 0);
  return header;
}

std::string EncodeRunStartEvent(const RecordingStart& start) {
  std::string fixed;
  Put<uint64_t>(fixed, start.start_realtime_ns);
  Put<uint64_t>(fixed, start.start_monotonic_ns);
  Put<uint32_t>(fixed, start.interval_ms);
  Put<uint32_t>(fixed, static_cast<uint32_t>(start.command.size()));
  Put<uint32_t>(fixed, static_cast<uint32_t>(start.driftwatch_version.size()));
  Put<uint32_t>(fixed, 0);
  std::string tail = start.driftwatch_version;
  for (const std::string& arg : start.command) {
    Put<uint32_t>(tail, static_cast<uint32_t>(arg.size()));
    tail += arg;
  }
  return Event(RecordingEvent::kRunStart, fixed, tail);
}

std::string EncodeConnectionEvent(RecordingEvent type, uint32_t connection, uint64_t monotonic_ns,
                                  std::string_view tail) {
  std::string fixed;
  Put<uint32_t>(fixed, connection);
  Put<uint32_t>(fixed, 0);
  Put<uint64_t>(fixed, monotonic_ns);
  return Event(type, fixed, tail);
}

std::string EncodeKeyFrameEvent(uint32_t connection, uint64_t monotonic_ns, uint64_t sequence,
                                uint64_t sequence_gaps, std::string_view key_frame) {
  std::string fixed;
  Put<uint32_t>(fixed, connection);
  Put<uint32_t>(fixed, 0);
  Put<uint64_t>(fixed, monotonic_ns);
  Put<uint64_t>(fixed, sequence);
  Put<uint64_t>(fixed, sequence_gaps);
  return Event(RecordingEvent::kKeyFrame, fixed, key_frame);
}

std::string EncodeRunEndEvent(const RunResult& result, uint64_t monotonic_ns) {
  std::string fixed;
  Put<uint64_t>(fixed, monotonic_ns);
  Put<uint64_t>(fixed, std::bit_cast<uint64_t>(result.duration_s));
  Put<uint32_t>(fixed, static_cast<uint32_t>(result.child_pid));
  Put<uint32_t>(fixed, (result.child_exit.signaled ? kRunEndSignaled : 0) |
                           (result.ended_by_us ? kRunEndEndedByUs : 0));
  Put<int32_t>(fixed, result.child_exit.code);
  Put<int32_t>(fixed, result.child_exit.signal);
  Put<uint32_t>(fixed, static_cast<uint32_t>(result.shim_path.size()));
  Put<uint32_t>(fixed, 0);
  return Event(RecordingEvent::kRunEnd, fixed, result.shim_path);
}

absl::StatusOr<std::unique_ptr<RecordingWriter>> RecordingWriter::Create(
    const std::string& path, const std::vector<std::string>& command, uint32_t interval_ms,
    std::string_view driftwatch_version) {
  // O_CLOEXEC: the traced command must not inherit the recording.
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create recording ", path, ": ", std::strerror(errno)));
  }
  std::unique_ptr<RecordingWriter> writer(new RecordingWriter(path, fd));
  writer->Append(EncodeRecordingHeader());
  RecordingStart start;
  start.command = command;
  start.interval_ms = interval_ms;
  start.driftwatch_version = std::string(driftwatch_version);
  start.start_realtime_ns = ClockNs(CLOCK_REALTIME);
  start.start_monotonic_ns = ClockNs(CLOCK_MONOTONIC);
  writer->Write(EncodeRunStartEvent(start));
  if (!writer->error_.ok()) return writer->error_;
  return writer;
}

RecordingWriter::~RecordingWriter() {
  if (fd_ >= 0) close(fd_);
}

void RecordingWriter::Write(std::string_view event) {
  if (!error_.ok() || fd_ < 0) return;
  const uint64_t length = event.size() - kEventHeaderSize;
  if (length > kMaxRecordingEventLength) {
    error_ = absl::DataLossError(absl::StrCat("cannot write recording ", path_, " at offset ",
                                              offset_, ": event of ", length, " bytes too long"));
    return;
  }
  Append(event);
}

void RecordingWriter::Append(std::string_view bytes) {
  if (!error_.ok() || fd_ < 0) return;
  // Straight to the kernel, one event per write: a killed driftwatch loses nothing it received.
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = absl::DataLossError(absl::StrCat("cannot write recording ", path_, " at offset ",
                                                offset_ + done, ": ",
                                                n < 0 ? std::strerror(errno) : "no progress"));
      return;
    }
    done += static_cast<size_t>(n);
  }
  offset_ += bytes.size();
}

void RecordingWriter::OnOpen(uint32_t connection) {
  Write(EncodeConnectionEvent(RecordingEvent::kConnectionOpen, connection, ClockNs(CLOCK_MONOTONIC),
                              {}));
}

void RecordingWriter::OnBytes(uint32_t connection, std::string_view bytes) {
  Write(EncodeConnectionEvent(RecordingEvent::kData, connection, ClockNs(CLOCK_MONOTONIC), bytes));
}

void RecordingWriter::OnClose(uint32_t connection, std::string_view read_error) {
  Write(EncodeConnectionEvent(RecordingEvent::kConnectionClose, connection,
                              ClockNs(CLOCK_MONOTONIC), read_error));
}

absl::Status RecordingWriter::Finish(const RunResult& result) {
  Write(EncodeRunEndEvent(result, ClockNs(CLOCK_MONOTONIC)));
  if (fd_ >= 0) {
    if (close(fd_) != 0 && error_.ok()) {
      error_ = absl::DataLossError(
          absl::StrCat("cannot write recording ", path_, ": close: ", std::strerror(errno)));
    }
    fd_ = -1;
  }
  return error_;
}

absl::StatusOr<std::unique_ptr<RecordingFile>> RecordingFile::Open(const std::string& path) {
  absl::StatusOr<RecordingStream> stream = OpenRecordingStream(path);
  if (!stream.ok()) return stream.status();
  std::unique_ptr<RecordingFile> file(
      new RecordingFile(path, stream->file, stream->compressed, stream->problem));
  if (absl::Status status = file->ReadFileHeader(); !status.ok()) return status;
  if (absl::Status status = file->ReadRunStart(); !status.ok()) return status;
  return file;
}

RecordingFile::~RecordingFile() { std::fclose(file_); }

std::string RecordingFile::Where(uint64_t offset) const {
  return absl::StrCat(path_, ": offset ", offset, compressed_ ? " (decompressed)" : "", ": ");
}

absl::Status RecordingFile::Error(uint64_t offset, absl::string_view what) const {
  // A compressed file that is corrupt or cut off says so: its events are not what is wrong.
  if (problem_ != nullptr && !problem_->empty()) {
    return absl::DataLossError(absl::StrCat(Where(offset), what, " (", *problem_, ")"));
  }
  return absl::DataLossError(absl::StrCat(Where(offset), what));
}

size_t RecordingFile::Read(char* data, size_t size) {
  const size_t got = std::fread(data, 1, size, file_);
  offset_ += got;
  return got;
}

absl::Status RecordingFile::ReadFileHeader() {
  char header[kFileHeaderSize];
  const size_t got = Read(header, sizeof(header));
  if (got < sizeof(kRecordingMagic) ||
      std::memcmp(header, kRecordingMagic, sizeof(kRecordingMagic)) != 0) {
    return Error(0, "not a driftwatch recording (no DWREC1 magic)");
  }
  if (got < sizeof(header)) return Error(got, "file header cut off");
  uint32_t version = 0;
  std::memcpy(&version, header + 8, sizeof(version));
  if (version != kRecordingFormatVersion) {
    return Error(8, absl::StrCat("recording format version ", version,
                                 " is not supported (this driftwatch reads version ",
                                 kRecordingFormatVersion, ")"));
  }
  return absl::OkStatus();
}

absl::Status RecordingFile::ReadRunStart() {
  uint32_t type = 0;
  uint64_t offset = 0;
  std::string payload;
  absl::StatusOr<bool> more = Next(type, payload, offset);
  if (!more.ok()) return more.status();
  if (!*more) {
    warnings_.clear();  // the error says it
    return Error(kFileHeaderSize, "no run start event: empty recording");
  }
  if (type != static_cast<uint32_t>(RecordingEvent::kRunStart)) {
    return Error(offset, absl::StrCat("the first event is ", EventName(type), " (type ", type,
                                      "), not the run start"));
  }
  return ParseRunStart(*this, offset, payload, start_);
}

absl::StatusOr<bool> RecordingFile::Next(uint32_t& type, std::string& payload, uint64_t& offset) {
  offset = offset_;
  char header[kEventHeaderSize];
  const size_t got = Read(header, sizeof(header));
  if (std::ferror(file_) != 0) {
    if (problem_ != nullptr && !problem_->empty()) {
      return absl::DataLossError(absl::StrCat(path_, ": ", *problem_));
    }
    return Error(offset_, absl::StrCat("read failed: ", std::strerror(errno)));
  }
  if (problem_ != nullptr && !problem_->empty() && got < sizeof(header)) {
    warnings_.push_back(absl::StrCat(path_, ": ", *problem_, "; replaying what precedes it"));
  }
  if (got == 0) return false;
  if (got < sizeof(header)) {
    warnings_.push_back(absl::StrCat(Where(offset),
                                     "the recording is cut off inside an event header (", got,
                                     " of 8 bytes); replaying what precedes it"));
    return false;
  }
  uint32_t length = 0;
  std::memcpy(&type, header, sizeof(type));
  std::memcpy(&length, header + 4, sizeof(length));
  if (length > kMaxRecordingEventLength) {
    return Error(offset, absl::StrCat("event length ", length, " exceeds ",
                                      kMaxRecordingEventLength, ": corrupt recording"));
  }
  // Read in pieces, growing as bytes arrive: a header may claim far more than the file has.
  payload.clear();
  size_t body = 0;
  while (body < length) {
    const size_t piece = std::min<size_t>(length - body, size_t{1} << 20);
    payload.resize(body + piece);
    const size_t got = Read(payload.data() + body, piece);
    body += got;
    if (got < piece) break;
  }
  payload.resize(body);
  if (std::ferror(file_) != 0) {
    if (problem_ != nullptr && !problem_->empty()) {
      return absl::DataLossError(absl::StrCat(path_, ": ", *problem_));
    }
    return Error(offset_, absl::StrCat("read failed: ", std::strerror(errno)));
  }
  if (body < length) {
    if (problem_ != nullptr && !problem_->empty()) {
      warnings_.push_back(absl::StrCat(path_, ": ", *problem_, "; replaying what precedes it"));
    }
    warnings_.push_back(absl::StrCat(Where(offset),
                                     "the recording is cut off inside its last event (",
                                     EventName(type), ", ", body, " of ", length,
                                     " bytes; driftwatch was killed?); replaying what "
                                     "precedes it"));
    return false;
  }
  return true;
}

absl::StatusOr<ConnectionEventView> RecordingFile::ParseConnectionEvent(
    uint32_t type, uint64_t offset, std::string_view payload) const {
  Cursor cursor(payload);
  ConnectionEventView view;
  uint32_t reserved = 0;
  bool ok = cursor.Get(view.connection) && cursor.Get(reserved) && cursor.Get(view.monotonic_ns);
  if (ok && type == static_cast<uint32_t>(RecordingEvent::kKeyFrame)) {
    ok = cursor.Get(view.sequence) && cursor.Get(view.sequence_gaps);
  }
  if (!ok) {
    return Error(offset, absl::StrCat(EventName(type), " event too short: corrupt recording"));
  }
  view.rest = cursor.Rest();
  return view;
}

namespace {

// Replays one event of a plain recording into the offline collector.
absl::Status ReplayEvent(const RecordingFile& file, uint32_t type, uint64_t offset,
                         std::string_view payload, Collector& collector, uint32_t& connections,
                         ReplayedRun& replay, uint64_t& last_monotonic_ns,
                         absl::flat_hash_map<uint32_t, int64_t>& gap_adjustments) {
  if (replay.complete) {
    return file.Error(offset, absl::StrCat(EventName(type), " event after the run end"));
  }
  switch (static_cast<RecordingEvent>(type)) {
    case RecordingEvent::kRunStart:
      return file.Error(offset, "a second run start");
    case RecordingEvent::kRunEnd:
      if (absl::Status status =
              ParseRunEnd(file, offset, payload, replay.result, last_monotonic_ns);
          !status.ok()) {
        return status;
      }
      replay.complete = true;
      return absl::OkStatus();
    case RecordingEvent::kConnectionOpen:
    case RecordingEvent::kData:
    case RecordingEvent::kConnectionClose:
    case RecordingEvent::kKeyFrame:
      break;
    default:
      return absl::OkStatus();  // an event type from a later driftwatch: skipped
  }
  absl::StatusOr<ConnectionEventView> event = file.ParseConnectionEvent(type, offset, payload);
  if (!event.ok()) return event.status();
  last_monotonic_ns = event->monotonic_ns;
  const uint32_t connection = event->connection;
  if (type == static_cast<uint32_t>(RecordingEvent::kConnectionOpen)) {
    // Ids are handed out in accept order; anything else would reorder the processes.
    if (connection != connections) {
      return file.Error(offset,
                        absl::StrCat("connection ", connection, " opened, expected connection ",
                                     connections, ": corrupt recording"));
    }
    collector.OpenOffline();
    ++connections;
  } else if (connection >= connections) {
    return file.Error(offset, absl::StrCat(EventName(type), " event for connection ", connection,
                                           ", which never opened"));
  } else if (type == static_cast<uint32_t>(RecordingEvent::kConnectionClose)) {
    collector.EndOffline(connection, event->rest);
  } else {
    if (type == static_cast<uint32_t>(RecordingEvent::kKeyFrame)) {
      // The decoder counts the censuses before the key frame's as dropped; they were not.
      gap_adjustments[connection] +=
          static_cast<int64_t>(event->sequence_gaps) - static_cast<int64_t>(event->sequence);
    }
    collector.FeedOffline(connection, event->rest);
  }
  return absl::OkStatus();
}

}  // namespace

void AdjustSequenceGaps(std::vector<ConnectionRecord>& records,
                        const absl::flat_hash_map<uint32_t, int64_t>& adjustments) {
  for (const auto& [connection, adjustment] : adjustments) {
    if (connection >= records.size()) continue;
    const int64_t gaps = static_cast<int64_t>(records[connection].sequence_gaps) + adjustment;
    records[connection].sequence_gaps = gaps > 0 ? static_cast<uint64_t>(gaps) : 0;
  }
}

absl::StatusOr<ReplayedRun> ReplayRecording(const std::string& path,
                                            const AnalysisOptions& analysis) {
  absl::StatusOr<std::unique_ptr<RecordingFile>> opened = RecordingFile::Open(path);
  if (!opened.ok()) return opened.status();
  RecordingFile& file = **opened;
  ReplayedRun replay;
  replay.start = file.start();
  std::unique_ptr<Collector> collector = Collector::CreateOffline();
  absl::flat_hash_map<uint32_t, int64_t> gap_adjustments;
  uint32_t connections = 0;
  uint64_t last_monotonic_ns = replay.start.start_monotonic_ns;
  uint32_t type = 0;
  uint64_t offset = 0;
  std::string payload;
  while (true) {
    absl::StatusOr<bool> more = file.Next(type, payload, offset);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (absl::Status status = ReplayEvent(file, type, offset, payload, *collector, connections,
                                          replay, last_monotonic_ns, gap_adjustments);
        !status.ok()) {
      return status;
    }
  }
  replay.warnings = std::move(file.warnings());
  if (!replay.complete) {
    replay.warnings.push_back(absl::StrCat(
        path,
        ": no run end event (driftwatch stopped before the run ended): the command's exit "
        "status is unknown and the duration runs to the last event"));
    const uint64_t start_ns = replay.start.start_monotonic_ns;
    replay.result.duration_s =
        last_monotonic_ns > start_ns ? static_cast<double>(last_monotonic_ns - start_ns) / 1e9 : 0;
  }

  RunResult& result = replay.result;
  result.command = replay.start.command;
  result.interval_ms = replay.start.interval_ms;
  std::vector<ConnectionRecord> records = collector->Finish();
  AdjustSequenceGaps(records, gap_adjustments);
  AnalyzeCollected(std::move(records), analysis, result);
  return replay;
}

}  // namespace dw::report
