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
// The writer writes each event straight to the file with write(2), no user-space buffer, so a
// driftwatch that is killed keeps everything it received; its last event may be cut off, which
// the reader tolerates with a warning.
//
// Thread-safety: not thread-safe; a RecordingWriter is driven by the collecting thread, a replay
// runs on one thread. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
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
};

// What a recording says about the run before it started.
struct RecordingStart {
  std::vector<std::string> command;
  uint32_t interval_ms = 0;
  std::string driftwatch_version;   // of the driftwatch that recorded
  uint64_t start_realtime_ns = 0;   // CLOCK_REALTIME when recording began (set by the writer)
  uint64_t start_monotonic_ns = 0;  // CLOCK_MONOTONIC then; event times use the same clock
};

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
  void Write(RecordingEvent type, std::string_view fixed, std::string_view tail);
  void Append(std::string_view bytes);  // all of it, or error_ is set and nothing more is written
  void WriteConnectionEvent(RecordingEvent type, uint32_t connection, std::string_view tail);

  std::string path_;
  int fd_ = -1;
  uint64_t offset_ = 0;  // bytes written so far
  absl::Status error_;   // the first write error
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
absl::StatusOr<ReplayedRun> ReplayRecording(const std::string& path,
                                            const AnalysisOptions& analysis);

}  // namespace dw::report
