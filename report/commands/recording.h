// recording.h: record a run's census streams to a file (`driftwatch run --record FILE`) and
// replay them offline (`driftwatch report FILE`).
//
// A recording keeps the raw bytes of every connection exactly as the collector read them, with
// when each connection opened and closed, plus the run's start (command, interval) and end (the
// command's exit status, duration, whether driftwatch stopped it). Raw bytes rather than decoded
// censuses: the replay feeds them through the same Collector decoding, BuildProcessReports and
// ComputeVerdict as the live run (AnalyzeCollected), so it reproduces the live verdict exactly,
// and a later driftwatch with a better analysis can re-judge an old recording. The format is
// described in docs/RECORDING.md.
//
// `driftwatch report` reads zstd-compressed recordings (the segments of `collect --state`) the
// same way, detected by their magic (zstd_stream.h).
//
// The writer writes each event straight to the file with write(2), no user-space buffer, so a
// driftwatch that is killed keeps everything it received; its last event may be cut off, which
// the reader tolerates with a warning.
//
// Thread-safety: not thread-safe; a RecordingWriter is driven by the collecting thread, a replay
// runs on one thread. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "report/analysis/process_analysis.h"
#include "report/model/run_result.h"
#include "report/transport/collector.h"

namespace dw::report {

// The first 8 bytes of every recording. It never changes; the version field after it does.
inline constexpr char kRecordingMagic[8] = {'D', 'W', 'R', 'E', 'C', '1', '\n', '\0'};
// The layout this driftwatch writes and the only one it reads. Compatible additions come as new
// event types (readers skip types they do not know) and keep the version.
inline constexpr uint32_t kRecordingFormatVersion = 1;
// Upper bound on one event's payload; anything larger is a corrupt file. Data events are at most
// one read() of the collector (64 KiB), the run start holds the command line.
inline constexpr uint32_t kMaxRecordingEventLength = 64u << 20;

// Event types (docs/RECORDING.md).
enum class RecordingEvent : uint32_t {
  kRunStart = 1,
  kConnectionOpen = 2,
  kData = 3,
  kConnectionClose = 4,
  kRunEnd = 5,
  // A Hello and a synthetic census recreating a connection's decoded state (census_encoder.h),
  // which opens each segment of `collect --state` after the first; then Data as received.
  kKeyFrame = 6,
};

// What a recording says about the run before it started.
struct RecordingStart {
  std::vector<std::string> command;
  uint32_t interval_ms = 0;
  std::string driftwatch_version;   // of the driftwatch that recorded
  uint64_t start_realtime_ns = 0;   // CLOCK_REALTIME when recording began (set by the writer)
  uint64_t start_monotonic_ns = 0;  // CLOCK_MONOTONIC then; event times use the same clock
};

// The byte encoding of a recording, shared by RecordingWriter and `collect --state`'s segments.
std::string EncodeRecordingHeader();
std::string EncodeRunStartEvent(const RecordingStart& start);
// ConnectionOpen, Data and ConnectionClose: the connection, the time, then `tail`.
std::string EncodeConnectionEvent(RecordingEvent type, uint32_t connection, uint64_t monotonic_ns,
                                  std::string_view tail);
// A KeyFrame: like Data, plus the census sequence of the synthetic census and the sequence gaps
// the stream had before it (a replay that starts at the key frame did not see those censuses).
std::string EncodeKeyFrameEvent(uint32_t connection, uint64_t monotonic_ns, uint64_t sequence,
                                uint64_t sequence_gaps, std::string_view key_frame);
std::string EncodeRunEndEvent(const RunResult& result, uint64_t monotonic_ns);
// CLOCK_MONOTONIC or CLOCK_REALTIME now, in nanoseconds.
uint64_t ClockNs(clockid_t clock);

// Writes a recording while RunUnderShim collects: install it as RunOptions::tap.
class RecordingWriter final : public Collector::Tap {
 public:
  // Creates (truncates) `path` and writes the file header and the run start, timed now. Errors
  // name the file.
  static absl::StatusOr<std::unique_ptr<RecordingWriter>> Create(
      const std::string& path, const std::vector<std::string>& command, uint32_t interval_ms,
      std::string_view driftwatch_version);
  ~RecordingWriter() override;
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  void OnOpen(uint32_t connection) override;
  void OnBytes(uint32_t connection, std::string_view bytes) override;
  void OnClose(uint32_t connection, std::string_view read_error) override;

  // Writes the run's end and closes the file. Returns the first write error of the whole
  // recording (after which nothing more was written, so the file never has holes), naming the
  // file and the offset; OK when everything is on disk.
  absl::Status Finish(const RunResult& result);

 private:
  RecordingWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void Write(std::string_view event);   // an encoded event, checked for length
  void Append(std::string_view bytes);  // all of it, or error_ is set and nothing more is written

  std::string path_;
  int fd_ = -1;
  uint64_t offset_ = 0;  // bytes written so far
  absl::Status error_;   // the first write error
};

// The fixed part of a connection event (ConnectionOpen, Data, ConnectionClose, KeyFrame).
struct ConnectionEventView {
  uint32_t connection = 0;
  uint64_t monotonic_ns = 0;
  uint64_t sequence = 0;       // KeyFrame only
  uint64_t sequence_gaps = 0;  // KeyFrame only
  std::string_view rest;       // the bytes, or the close's error text
};

// Reads a recording event by event: plain or zstd-compressed (by content, not by name). Errors
// and warnings name the file and the event's offset (in the decompressed data for a compressed
// file).
class RecordingFile {
 public:
  // Opens `path` and reads the file header and the run start.
  static absl::StatusOr<std::unique_ptr<RecordingFile>> Open(const std::string& path);
  ~RecordingFile();
  RecordingFile(const RecordingFile&) = delete;
  RecordingFile& operator=(const RecordingFile&) = delete;

  const std::string& path() const { return path_; }
  const RecordingStart& start() const { return start_; }
  // The next event after the run start. False at the end of the file; an event or a compressed
  // frame cut off at the end also ends it, with a warning in warnings().
  absl::StatusOr<bool> Next(uint32_t& type, std::string& payload, uint64_t& offset);
  // Parses a connection event's fixed part; an error if it is too short.
  absl::StatusOr<ConnectionEventView> ParseConnectionEvent(uint32_t type, uint64_t offset,
                                                           std::string_view payload) const;
  absl::Status Error(uint64_t offset, absl::string_view what) const;
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  RecordingFile(std::string path, std::FILE* file, bool compressed,
                std::shared_ptr<std::string> problem)
      : path_(std::move(path)),
        file_(file),
        compressed_(compressed),
        problem_(std::move(problem)) {}
  absl::Status ReadFileHeader();
  absl::Status ReadRunStart();
  size_t Read(char* data, size_t size);
  std::string Where(uint64_t offset) const;

  std::string path_;
  std::FILE* file_;
  bool compressed_;
  std::shared_ptr<std::string> problem_;  // a compressed file's cut-off or corruption
  uint64_t offset_ = 0;
  RecordingStart start_;
  std::vector<std::string> warnings_;
};

// A replayed recording.
struct ReplayedRun {
  RecordingStart start;
  bool complete = false;              // the run-end event was there
  std::vector<std::string> warnings;  // a cut-off recording, ...: each names the file and offset
  RunResult result;                   // as RunUnderShim returned it live
};

// Reads the recording at `path` and analyses it with `analysis` (a RunOptions may be passed: its
// command, interval, tap and run settings are not used, they come from the recording). Errors
// (missing file, not a recording, unsupported version, corrupt event) name the file and the
// byte offset. A recording cut off inside its last event, or without a run end (driftwatch was
// killed), is replayed up to there with a warning; without a run end the command's exit status
// is unknown (reported as exit 0, not a failure) and the duration runs to the last event.
// A replay that starts at a key frame: the decoder counted the censuses before it as dropped.
// Adds each connection's adjustment (the gaps the key frame says the stream had, minus its
// census's sequence) to its record.
void AdjustSequenceGaps(std::vector<ConnectionRecord>& records,
                        const absl::flat_hash_map<uint32_t, int64_t>& adjustments);

absl::StatusOr<ReplayedRun> ReplayRecording(const std::string& path,
                                            const AnalysisOptions& analysis);

}  // namespace dw::report
