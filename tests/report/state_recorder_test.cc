// state_recorder_test: `collect --state`'s segments (report/commands/state_recorder.h) roll at
// census ends, each replays on its own, and a directory replays exactly as the unsegmented
// stream: the same censuses, times, gaps and every site's counters (state_replay.h). Also prints
// what recording costs the collect loop per census and per rolled segment (key frame encoded and
// compressed) for a process with 10k and 100k sites.
#include "report/commands/state_recorder.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "report/commands/recording.h"
#include "report/commands/state_replay.h"
#include "tests/report/census_stream_builder.h"

namespace dw::report {
namespace {

namespace fs = std::filesystem;
using testing::StreamBuilder;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/state_recorder_test.XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

StateOptions Options(const std::string& dir, uint64_t segment_bytes,
                     uint64_t max_bytes = uint64_t{1} << 30) {
  StateOptions options;
  options.dir = dir;
  options.segment_bytes = segment_bytes;
  options.max_bytes = max_bytes;
  return options;
}

// A process with `sites` heap sites defined at first; census i (1 ms apart) changes `changed` of
// them, defines a new one every 10th census, and skips sequence 7 (a dropped census).
std::vector<std::string> Stream(uint32_t sites, uint32_t censuses, uint32_t changed) {
  std::vector<std::string> parts;
  StreamBuilder b;
  b.Hello(321, 1, "/usr/bin/demo", 100);
  uint32_t defined = sites;
  for (uint32_t i = 0; i < censuses; ++i) {
    const uint64_t sequence = i < 7 ? i : i + 1;
    b.Begin(sequence, 1'000'000'000 + uint64_t{i} * 1'000'000, (8 + i) << 20);
    if (i == 0) {
      b.Modules({{0x400000, 0x900000, 0, wire::kModuleExec, "/usr/bin/demo"}});
      for (uint32_t id = 1; id <= sites; ++id) b.Site(id, {0x400000 + id * 16, 0x400008, 0x400010});
    }
    if (i > 0 && i % 10 == 0) b.Site(++defined, {0x800000 + i});
    std::vector<wire::SiteCounter> counters;
    const uint32_t count = i == 0 ? sites : std::min(changed, defined);
    for (uint32_t k = 0; k < count; ++k) {
      const uint32_t id = 1 + (i * 7919u + k) % defined;
      counters.push_back(
          {id, 0, uint64_t{i} * 3 + id, i, (uint64_t{i} * 3 + id) * 64, uint64_t{i} * 64});
    }
    b.Counters(wire::Kind::kHeap, counters).End(sequence);
    parts.push_back(b.Take());
  }
  return parts;
}

// Everything fed to a StateRecorder the way Collector::PollOnce does, in reads of `chunk` bytes.
std::unique_ptr<StateRecorder> Record(const StateOptions& options, const Collector& collector,
                                      const std::vector<std::string>& parts, size_t chunk,
                                      bool close = true) {
  absl::StatusOr<std::unique_ptr<StateRecorder>> recorder =
      StateRecorder::Create(options, collector, [](const std::string&) {});
  EXPECT_TRUE(recorder.ok()) << recorder.status();
  (*recorder)->OnOpen(0);
  std::string all;
  for (const std::string& part : parts) all += part;
  for (size_t at = 0; at < all.size(); at += chunk) {
    (*recorder)->OnBytes(0, std::string_view(all).substr(at, chunk));
  }
  if (close) (*recorder)->OnClose(0, "");
  return std::move(*recorder);
}

std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The unsegmented stream as a plain recording, replayed: the reference.
ReplayedRun ReplayWhole(const std::string& dir, const std::vector<std::string>& parts) {
  std::string all;
  for (const std::string& part : parts) all += part;
  RecordingStart start;
  start.command = {"/usr/bin/demo"};
  start.interval_ms = 100;
  start.driftwatch_version = "test";
  const std::string path = dir + "/whole.dwrec";
  std::ofstream(path) << EncodeRecordingHeader() << EncodeRunStartEvent(start)
                      << EncodeConnectionEvent(RecordingEvent::kConnectionOpen, 0, 1, {})
                      << EncodeConnectionEvent(RecordingEvent::kData, 0, 2, all)
                      << EncodeConnectionEvent(RecordingEvent::kConnectionClose, 0, 3, {});
  absl::StatusOr<ReplayedRun> replay = ReplayRecording(path, AnalysisOptions());
  EXPECT_TRUE(replay.ok()) << replay.status();
  fs::remove(path);
  return replay.ok() ? *replay : ReplayedRun();
}

void ExpectSameProcess(const ProcessReport& a, const ProcessReport& b) {
  EXPECT_EQ(a.census_count, b.census_count);
  EXPECT_EQ(a.sequence_gaps, b.sequence_gaps);
  EXPECT_EQ(a.heap_live_bytes, b.heap_live_bytes);
  EXPECT_EQ(a.series.times(), b.series.times());
  EXPECT_EQ(a.series.rss_bytes(), b.series.rss_bytes());
  ASSERT_EQ(a.sites.size(), b.sites.size());
  for (const SiteReport& site : a.sites) {
    const SiteReport* other = b.FindSite(site.kind, site.site_id);
    ASSERT_NE(other, nullptr) << site.site_id;
    EXPECT_EQ(site.counters, other->counters) << site.site_id;
  }
}

TEST(StateRecorderTest, RollsSegmentsThatReplayAloneAndTogetherAsTheWholeStream) {
  TempDir dir;
  const std::vector<std::string> parts = Stream(40, 60, 5);
  std::unique_ptr<Collector> collector = Collector::CreateOffline();
  StateOptions options = Options(dir.path() + "/state", 2048);
  Record(options, *collector, parts, 333);
  const std::vector<std::string> segments = Segments(options.dir);
  ASSERT_GE(segments.size(), 4u);
  EXPECT_NE(segments[0].find("/demo-321-"), std::string::npos) << segments[0];

  const ReplayedRun whole = ReplayWhole(dir.path(), parts);
  ASSERT_EQ(whole.result.processes.size(), 1u);
  size_t censuses = 0;
  for (const std::string& segment : segments) {
    absl::StatusOr<ReplayedRun> alone = ReplayRecording(segment, AnalysisOptions());
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_TRUE(alone->warnings.empty()) << segment << ": " << alone->warnings.front();
    ASSERT_EQ(alone->result.processes.size(), 1u) << segment;
    // Each segment after the first repeats the previous census in its key frame.
    censuses += alone->result.processes[0].census_count - (censuses == 0 ? 0 : 1);
  }
  EXPECT_EQ(censuses, parts.size());
  // The last segment alone: the census dropped early on (sequence 7) is counted once, from its
  // key frame, not the thousands before it.
  absl::StatusOr<ReplayedRun> last = ReplayRecording(segments.back(), AnalysisOptions());
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->result.processes[0].sequence_gaps, 1u);

  const std::string process_dir = fs::path(segments[0]).parent_path().string();
  absl::StatusOr<ReplayedRun> together = ReplayPath(process_dir, ReplayWindow(), AnalysisOptions());
  ASSERT_TRUE(together.ok()) << together.status();
  EXPECT_TRUE(together->warnings.empty()) << together->warnings.front();
  ASSERT_EQ(together->result.processes.size(), 1u);
  ExpectSameProcess(whole.result.processes[0], together->result.processes[0]);

  // A window: censuses 30 to 49 (the stream's census i is taken at 1.7e18 + 1e9 + i * 1e6 ns).
  const uint64_t base = 1'700'000'000'000'000'000 + 1'000'000'000;
  const ReplayWindow window{.since_ns = base + 30'000'000, .until_ns = base + 49'000'000};
  absl::StatusOr<ReplayedRun> windowed = ReplayPath(process_dir, window, AnalysisOptions());
  ASSERT_TRUE(windowed.ok()) << windowed.status();
  ASSERT_EQ(windowed->result.processes.size(), 1u);
  EXPECT_EQ(windowed->result.processes[0].census_count, 20u);
  // Dropped censuses count from the process's start, as live: the one before the window, not
  // the 30 censuses before it that the window leaves out.
  EXPECT_EQ(windowed->result.processes[0].sequence_gaps, 1u);
  EXPECT_EQ(windowed->result.processes[0].series.times().size(), 20u);
}

// A middle segment deleted (by the caps): the replay warns and keeps both sides apart.
TEST(StateRecorderTest, AMissingSegmentIsSaidAndNotBridged) {
  TempDir dir;
  std::unique_ptr<Collector> collector = Collector::CreateOffline();
  StateOptions options = Options(dir.path() + "/state", 2048);
  Record(options, *collector, Stream(40, 60, 5), 4096);
  const std::vector<std::string> segments = Segments(options.dir);
  ASSERT_GE(segments.size(), 4u);
  fs::remove(segments[1]);
  absl::StatusOr<ReplayedRun> replay =
      ReplayPath(fs::path(segments[0]).parent_path().string(), ReplayWindow(), AnalysisOptions());
  ASSERT_TRUE(replay.ok()) << replay.status();
  ASSERT_EQ(replay->warnings.size(), 1u);
  EXPECT_NE(replay->warnings[0].find("censuses are missing"), std::string::npos);
  EXPECT_EQ(replay->result.processes.size(), 2u);
}

// The total cap deletes the oldest closed segments first.
TEST(StateRecorderTest, TheTotalCapDeletesTheOldestSegments) {
  TempDir dir;
  std::unique_ptr<Collector> collector = Collector::CreateOffline();
  StateOptions options = Options(dir.path() + "/state", 2048, 6000);
  std::unique_ptr<StateRecorder> recorder = Record(options, *collector, Stream(40, 120, 5), 4096);
  const std::vector<std::string> segments = Segments(options.dir);
  uint64_t total = 0;
  for (const std::string& segment : segments) total += fs::file_size(segment);
  EXPECT_LE(total, 6000u);
  EXPECT_GT(recorder->stats().deleted_segments, 0u);
  ASSERT_FALSE(segments.empty());
  EXPECT_EQ(fs::path(segments[0]).filename().string().substr(0, 6),
            fmt::format("{:06}", recorder->stats().deleted_segments));
}

// A write error (here EFBIG: RLIMIT_FSIZE of 1 byte stands in for a full disk, without root) is
// logged once however many writes fail; recording goes on when writing works again (logged
// once), and the segment cut by the error replays with a warning.
TEST(StateRecorderTest, AWriteErrorIsLoggedOnceAndRecordingResumes) {
  TempDir dir;
  std::unique_ptr<Collector> collector = Collector::CreateOffline();
  std::vector<std::string> log;
  StateOptions options = Options(dir.path() + "/state", 2048);
  options.flush_seconds = 0;  // every Tick writes out
  options.retry_seconds = 0;  // and every census end tries a new segment: many failures
  absl::StatusOr<std::unique_ptr<StateRecorder>> recorder = StateRecorder::Create(
      options, *collector, [&log](const std::string& line) { log.push_back(line); });
  ASSERT_TRUE(recorder.ok());
  const std::vector<std::string> parts = Stream(40, 60, 5);
  (*recorder)->OnOpen(0);
  const auto feed = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      (*recorder)->OnBytes(0, parts[i]);
      (*recorder)->Tick();
    }
  };
  feed(0, 20);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  rlimit full = old;
  full.rlim_cur = 1;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &full), 0);
  feed(20, 40);
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  feed(40, 60);
  (*recorder)->OnClose(0, "");

  size_t errors = 0, resumed = 0;
  for (const std::string& line : log) {
    errors += line.find("cannot write") != std::string::npos;
    resumed += line.find("again") != std::string::npos;
  }
  EXPECT_EQ(errors, 1u) << ::testing::PrintToString(log);
  EXPECT_EQ(resumed, 1u) << ::testing::PrintToString(log);
  size_t cut = 0;
  for (const std::string& segment : Segments(dir.path() + "/state")) {
    if (fs::file_size(segment) <= 1) continue;  // created while the disk was full
    absl::StatusOr<ReplayedRun> replay = ReplayRecording(segment, AnalysisOptions());
    ASSERT_TRUE(replay.ok()) << replay.status();
    for (const std::string& warning : replay->warnings) {
      cut += warning.find("cut off") != std::string::npos;
    }
  }
  EXPECT_GE(cut, 1u);
  absl::StatusOr<ReplayedRun> last =
      ReplayRecording(Segments(dir.path() + "/state").back(), AnalysisOptions());
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_TRUE(last->warnings.empty());
  EXPECT_GT(last->result.processes[0].census_count, 1u);
}

// What the collect loop pays: per census (decoding for the cursor, compressing) and per rolled
// segment (key frame encoded and compressed), at 10k and 100k sites with 1% changing.
TEST(StateRecorderTest, CostPerCensusAndPerKeyFrame) {
  for (uint32_t sites : {10'000u, 100'000u}) {
    TempDir dir;
    std::unique_ptr<Collector> collector = Collector::CreateOffline();
    StateOptions options = Options(dir.path() + "/state", uint64_t{1} << 40);
    const std::vector<std::string> parts = Stream(sites, 21, sites / 100);
    std::unique_ptr<StateRecorder> recorder =
        Record(options, *collector, {parts[0]}, 65536, /*close=*/false);
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 1; i + 1 < parts.size(); ++i) recorder->OnBytes(0, parts[i]);
    const double census_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count() /
        static_cast<double>(parts.size() - 2);
    recorder->RollAll();
    const auto roll = std::chrono::steady_clock::now();
    recorder->OnBytes(0, parts.back());
    const double roll_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - roll).count();
    recorder->Close();
    std::printf(
        "%u sites: %.2f ms per census (%zu bytes each); rolling: %.1f ms (key frame %.1f MB); "
        "%.1f MB of census data in %.2f MB\n",
        sites, census_ms, parts[1].size(), roll_ms,
        static_cast<double>(recorder->stats().key_frame_bytes) / 1e6,
        static_cast<double>(recorder->stats().census_bytes) / 1e6,
        static_cast<double>(recorder->stats().compressed_bytes) / 1e6);
    EXPECT_EQ(recorder->stats().key_frames, 1u);
    EXPECT_EQ(Segments(options.dir).size(), 2u);
  }
}

}  // namespace
}  // namespace dw::report
