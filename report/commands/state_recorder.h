// state_recorder.h: `driftwatch collect --state DIR`: rolling, zstd-compressed, size-capped
// recordings of every process, so that any past window can be replayed with `driftwatch report`.
//
// Layout: DIR/<name>-<pid>-<start>/<seq>-<time>.dwrec.zst, one directory per process lifetime
// (its command name, pid and start time in UTC, as collect's log names it), one file per
// segment (<seq> counts from 000000; <time> is when the segment began, UTC). Names sort by time.
// Each segment is a recording (docs/RECORDING.md) of the process's one connection, compressed
// as one zstd frame. The first segment holds the stream from its Hello; each later one opens
// with a KeyFrame event (census_encoder.h: the Hello and a synthetic census recreating every
// site, module list and counter as of the previous census), then the raw bytes as received, so
// every segment replays on its own and a directory replays as one stream.
//
// A segment is rolled at the first census end after it holds `segment_bytes` of census data
// (uncompressed, and at least as much as its key frame, so that a process with 100k sites does
// not roll at every census) or is `segment_seconds` old, and on SIGHUP (RollAll). Compressed data
// is flushed every `flush_seconds`, so a killed collector leaves files readable up to then (the
// reader warns about the cut-off frame). Ended processes keep their segments (a crashed service's
// last hours stay there); only the caps remove segments: the oldest closed ones first, of the
// process over `process_max_bytes`, and of all of DIR over `max_bytes` (segments found in DIR at
// start count too). A write error (disk full) is logged once; that segment is closed where it
// stands, collection goes on, and a new segment (with a key frame) is tried `retry_seconds` later.
//
// Thread-safety: not thread-safe; driven by collect's loop (the Tap runs inside
// Collector::PollOnce on the same thread). Allocation: yes (collector code). Never runs inside a
// hook.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "report/commands/zstd_stream.h"
#include "report/decode/census_encoder.h"
#include "report/transport/collector.h"

namespace dw::report {

struct StateOptions {
  std::string dir;
  uint64_t segment_bytes = uint64_t{4} << 20;  // census bytes per segment, before compression
  double segment_seconds = 3600;
  uint64_t max_bytes = uint64_t{1} << 30;            // all of DIR, on disk
  uint64_t process_max_bytes = uint64_t{256} << 20;  // one process's directory
  double flush_seconds = 2;
  double retry_seconds = 10;       // after a write error, before a new segment is tried
  int level = 3;                   // zstd
  std::string driftwatch_version;  // written into each segment's run start
};

// "4MiB", "1GiB", "512KiB", "4096B", "4096": a byte amount for the --state options.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

class StateRecorder final : public Collector::Tap {
 public:
  using Log = std::function<void(const std::string& line)>;
  // Creates DIR if needed and takes stock of the segments already there. `collector` names the
  // processes (its Peek() gives /proc's names of a connection).
  static absl::StatusOr<std::unique_ptr<StateRecorder>> Create(const StateOptions& options,
                                                               const Collector& collector, Log log);
  ~StateRecorder() override;
  StateRecorder(const StateRecorder&) = delete;
  StateRecorder& operator=(const StateRecorder&) = delete;

  void OnOpen(uint32_t connection) override;
  void OnBytes(uint32_t connection, std::string_view bytes) override;
  void OnClose(uint32_t connection, std::string_view read_error) override;

  // Called from collect's loop at least once a second: flushes, marks old segments for rolling.
  void Tick();
  // Every live segment ends at its next census end and a new file begins (SIGHUP).
  void RollAll();
  // Flushes and closes every segment (SIGTERM); the connections are still open, so the replay
  // says so. Logs a line with what was written.
  void Close();

  struct Stats {
    uint64_t segments = 0;
    uint64_t census_bytes = 0;      // raw bytes received
    uint64_t compressed_bytes = 0;  // written to files (key frames and events included)
    uint64_t key_frames = 0;
    uint64_t key_frame_bytes = 0;
    double key_frame_ms_max = 0;  // encoding and compressing the largest one
    uint64_t deleted_segments = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Live;
  struct Stored {  // a closed segment, for the caps
    std::string path;
    std::string process_dir;
    uint64_t bytes = 0;
  };

  StateRecorder(StateOptions options, const Collector& collector, Log log);
  absl::Status TakeStock();
  bool StartProcess(uint32_t connection, Live& live);
  void Roll(Live& live);
  bool OpenSegment(Live& live, std::string key, Clock::time_point started);
  void WriteEvent(Live& live, std::string_view event);
  void Written();
  void CloseSegment(Live& live, std::string_view close_event);
  bool RollDue(const Live& live) const;
  void Failed(Live& live, const absl::Status& status);
  void EnforceCaps();
  void Delete(std::list<Stored>::iterator it);

  StateOptions options_;
  const Collector& collector_;
  Log log_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<Live>> live_;
  std::list<Stored> stored_;                                  // closed segments, oldest first
  absl::flat_hash_map<std::string, uint64_t> process_bytes_;  // closed segments per directory
  absl::flat_hash_map<std::string, uint32_t> next_sequence_;  // per directory
  uint64_t stored_bytes_ = 0;
  Clock::time_point last_caps_{};
  bool failing_ = false;        // the last write failed (logged once until one succeeds)
  bool said_over_cap_ = false;  // live segments alone exceed max_bytes (logged once)
  Stats stats_;
};

}  // namespace dw::report
