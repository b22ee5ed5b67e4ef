// Tests of record and replay: `driftwatch run --record` and `driftwatch report`.
//
// The acceptance test runs the fake census client under RunUnderShim with a RecordingWriter
// tapping the collector, replays the file and requires the replay to render exactly the same
// verdict JSON and terminal report as the live run. The golden test replays a checked-in
// recording with the driftwatch binary and diffs its JSON with a checked-in expectation.
#include "report/commands/recording.h"
#include "report/commands/run_command.h"

#include <stdio.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "report/outputs/report_output.h"
#include "tests/report/cli_runner.h"

namespace dw::report {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::string TempPath(const std::string& name) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = std::string(info->test_suite_name()) + "_" + info->name();
  for (char& c : test) {
    if (c == '/') c = '_';
  }
  return (std::filesystem::temp_directory_path() / ("dwrec_" + test + "_" + name)).string();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string TerminalReport(const RunResult& result) {
  char* data = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&data, &size);
  PrintTerminalReport(result, out);
  std::fclose(out);
  std::string text(data, size);
  std::free(data);
  return text;
}

RunOptions FakeRun(std::vector<std::string> args) {
  RunOptions options;
  options.command = {FAKE_CENSUS_CLIENT};
  options.command.insert(options.command.end(), args.begin(), args.end());
  options.shim_path = NOOP_SHIM;
  options.interval_ms = 20;
  options.drain_grace_s = 2.0;
  options.kill_grace_s = 2.0;
  return options;
}

// Runs the fake client live with a recording, returns the live result; the file is at `path`.
RunResult RecordFakeRun(const RunOptions& options, const std::string& path) {
  absl::StatusOr<std::unique_ptr<RecordingWriter>> writer =
      RecordingWriter::Create(path, options.command, options.interval_ms, "test");
  EXPECT_TRUE(writer.ok()) << writer.status();
  RunOptions recorded = options;
  recorded.tap = writer->get();
  absl::StatusOr<RunResult> live = RunUnderShim(recorded);
  EXPECT_TRUE(live.ok()) << live.status();
  EXPECT_TRUE((*writer)->Finish(*live).ok());
  return *std::move(live);
}

struct RoundTripCase {
  const char* name;
  std::vector<std::string> args;
  std::optional<double> duration_s;
  int exit_code;  // -1: whatever the analysis decides (drift cases), as long as both agree
};

// Names the case in test listings instead of dumping its bytes.
void PrintTo(const RoundTripCase& c, std::ostream* os) { *os << c.name; }

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

// The acceptance criterion: the replay reproduces the live verdict exactly.
TEST_P(RoundTripTest, ReplayRendersExactlyWhatTheLiveRunRendered) {
  RunOptions options = FakeRun(GetParam().args);
  options.duration_s = GetParam().duration_s;
  const std::string path = TempPath("run.dwrec");
  const RunResult live = RecordFakeRun(options, path);
  if (GetParam().exit_code >= 0) {
    EXPECT_EQ(ExitCodeFor(live), GetParam().exit_code);
  }

  absl::StatusOr<ReplayedRun> replay = ReplayRecording(path, RunOptions());
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_TRUE(replay->complete);
  EXPECT_THAT(replay->warnings, IsEmpty());
  EXPECT_EQ(replay->start.command, options.command);
  EXPECT_EQ(replay->start.interval_ms, 20u);
  EXPECT_EQ(replay->start.driftwatch_version, "test");
  EXPECT_GT(replay->start.start_realtime_ns, 0u);

  const RunResult& again = replay->result;
  EXPECT_EQ(RenderVerdictJson(again), RenderVerdictJson(live));
  EXPECT_EQ(TerminalReport(again), TerminalReport(live));
  EXPECT_EQ(ExitCodeFor(again), ExitCodeFor(live));
  EXPECT_EQ(again.duration_s, live.duration_s);
  EXPECT_EQ(again.child_pid, live.child_pid);
  EXPECT_EQ(again.shim_path, live.shim_path);
  ASSERT_THAT(again.processes, SizeIs(live.processes.size()));
  for (size_t i = 0; i < live.processes.size(); ++i) {
    EXPECT_EQ(again.processes[i].census_count, live.processes[i].census_count);
    EXPECT_EQ(again.processes[i].stream_error, live.processes[i].stream_error);
    EXPECT_EQ(again.processes[i].saw_final, live.processes[i].saw_final);
  }
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(
    FakeClient, RoundTripTest,
    ::testing::Values(RoundTripCase{"leak", {"--censuses", "30"}, std::nullopt, -1},
                      RoundTripCase{"fork", {"--fork", "--censuses", "25"}, std::nullopt, -1},
                      RoundTripCase{"crash", {"--censuses", "10", "--crash"}, std::nullopt, 3},
                      RoundTripCase{"exit_code", {"--exit-code", "4"}, std::nullopt, 3},
                      RoundTripCase{"garbage", {"--garbage"}, std::nullopt, kExitInconclusive},
                      RoundTripCase{"stopped", {"--forever"}, 0.6, -1}),
    [](const auto& info) { return std::string(info.param.name); });

// Offsets of the events of a recording (after the 16-byte file header).
std::vector<size_t> EventOffsets(const std::string& bytes) {
  std::vector<size_t> offsets;
  for (size_t offset = 16; offset + 8 <= bytes.size();) {
    offsets.push_back(offset);
    uint32_t length = 0;
    std::memcpy(&length, bytes.data() + offset + 4, sizeof(length));
    offset += 8 + length;
  }
  return offsets;
}

TEST(RecordingTest, CutOffRecordingReplaysWhatPrecedesWithAWarning) {
  const std::string path = TempPath("run.dwrec");
  const RunResult live = RecordFakeRun(FakeRun({"--censuses", "30"}), path);
  const std::string bytes = ReadAll(path);
  // As if driftwatch was killed in the middle of writing an event two thirds into the run: every
  // event before it is kept.
  const std::vector<size_t> offsets = EventOffsets(bytes);
  ASSERT_GT(offsets.size(), 10u);
  const size_t cut_event = offsets[offsets.size() * 2 / 3];
  WriteAll(path, bytes.substr(0, cut_event + 8 + 10));  // every event has >= 16 payload bytes
  absl::StatusOr<ReplayedRun> replay = ReplayRecording(path, RunOptions());
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->complete);
  ASSERT_THAT(replay->warnings, SizeIs(2));
  EXPECT_THAT(replay->warnings[0], HasSubstr(absl::StrCat(path, ": offset ", cut_event, ": ")));
  EXPECT_THAT(replay->warnings[0], HasSubstr("cut off inside its last event"));
  EXPECT_THAT(replay->warnings[1], HasSubstr("no run end"));
  ASSERT_THAT(replay->result.processes, SizeIs(1));
  const ProcessReport& process = replay->result.processes[0];
  EXPECT_GT(process.census_count, 5u);
  EXPECT_LT(process.census_count, 30u);
  // The connection never closed: like a live run that ends with it open. Cut between two
  // censuses that is no error, cut inside one it is "connection still open: ...".
  if (!process.stream_error.empty()) {
    EXPECT_THAT(process.stream_error, HasSubstr("connection still open"));
  }
  EXPECT_FALSE(replay->result.child_failed) << "the exit status is unknown, not a failure";
  EXPECT_GT(replay->result.duration_s, 0);
  EXPECT_LE(replay->result.duration_s, live.duration_s + 1);
  std::filesystem::remove(path);
}

TEST(RecordingTest, CutInsideAnEventHeaderIsAlsoTolerated) {
  const std::string path = TempPath("run.dwrec");
  RecordFakeRun(FakeRun({"--censuses", "5"}), path);
  std::string bytes = ReadAll(path);
  WriteAll(path, bytes + std::string("\x03\x00\x00", 3));  // 3 bytes of a next event header
  absl::StatusOr<ReplayedRun> replay = ReplayRecording(path, RunOptions());
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_TRUE(replay->complete);
  ASSERT_THAT(replay->warnings, SizeIs(1));
  EXPECT_THAT(replay->warnings[0],
              HasSubstr(path + ": offset " + std::to_string(bytes.size()) + ": "));
  std::filesystem::remove(path);
}

// Bad input: a clear error naming the file and the offset, never a crash.
TEST(RecordingTest, BadRecordingsAreErrorsNamingFileAndOffset) {
  const std::string path = TempPath("bad.dwrec");
  RecordFakeRun(FakeRun({"--censuses", "3"}), path);
  const std::string good = ReadAll(path);
  auto with_u32 = [&](size_t offset, uint32_t value) {
    std::string bytes = good;
    std::memcpy(bytes.data() + offset, &value, sizeof(value));
    return bytes;
  };
  uint32_t run_start_length = 0;
  std::memcpy(&run_start_length, good.data() + 20, sizeof(run_start_length));
  const size_t first_connection_event = 16 + 8 + run_start_length;
  struct Case {
    const char* name;
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"empty", "", "offset 0: not a driftwatch recording"},
      {"magic", "GIF89a" + good.substr(6), "offset 0: not a driftwatch recording"},
      {"short header", good.substr(0, 12), "offset 12: file header cut off"},
      {"version", with_u32(8, 2), "offset 8: recording format version 2 is not supported"},
      {"no run start", good.substr(0, 16), "offset 16: no run start event"},
      {"first event", with_u32(16, 3), "offset 16: the first event is data"},
      {"huge length", with_u32(first_connection_event + 4, 0xffffffff),
       absl::StrCat("offset ", first_connection_event, ": event length 4294967295 exceeds")},
      {"unknown connection", with_u32(first_connection_event + 8, 7),
       absl::StrCat("offset ", first_connection_event, ": connection 7 opened, expected")},
      {"short run start", with_u32(20, 4), "offset 16: run start event too short"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    WriteAll(path, c.bytes);
    absl::StatusOr<ReplayedRun> replay = ReplayRecording(path, RunOptions());
    ASSERT_FALSE(replay.ok());
    EXPECT_THAT(std::string(replay.status().message()), HasSubstr(path + ": " + c.message));
  }
  std::filesystem::remove(path);
  absl::StatusOr<ReplayedRun> missing = ReplayRecording(path, RunOptions());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("cannot open recording " + path + ": No such file"));
}

TEST(RecordingTest, UnwritableRecordingFailsAtCreate) {
  absl::StatusOr<std::unique_ptr<RecordingWriter>> writer =
      RecordingWriter::Create("/nonexistent-dir/run.dwrec", {"true"}, 1000, "test");
  ASSERT_FALSE(writer.ok());
  EXPECT_THAT(std::string(writer.status().message()),
              HasSubstr("cannot create recording /nonexistent-dir/run.dwrec"));
}

TEST(RecordingTest, WriteFailureIsAClearError) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  absl::StatusOr<std::unique_ptr<RecordingWriter>> writer =
      RecordingWriter::Create("/dev/full", {"true"}, 1000, "test");
  ASSERT_FALSE(writer.ok()) << "/dev/full takes no bytes, not even the header";
  EXPECT_THAT(std::string(writer.status().message()),
              HasSubstr("cannot write recording /dev/full at offset 0: No space left"));
}

// --- the driftwatch binary ---

using dw::report::cli::kShimEnv;
using dw::report::cli::Outcome;
using dw::report::cli::RunCli;

TEST(RecordingCliTest, RecordThenReportGivesTheSameVerdictJsonAndExitCode) {
  const std::string recording = TempPath("run.dwrec");
  const std::string live_json = TempPath("live.json");
  const std::string replay_json = TempPath("replay.json");
  for (const char* args : {"--censuses 20", "--censuses 8 --exit-code 5"}) {
    SCOPED_TRACE(args);
    Outcome live = RunCli(absl::StrCat("run --interval 20 --record ", recording, " --json ",
                                       live_json, " -- ", FAKE_CENSUS_CLIENT, " ", args),
                          kShimEnv);
    Outcome replay = RunCli(absl::StrCat("report --json ", replay_json, " ", recording));
    EXPECT_EQ(replay.exit_code, live.exit_code) << live.output << replay.output;
    EXPECT_EQ(replay.output, live.output);
    EXPECT_EQ(ReadAll(replay_json), ReadAll(live_json));
    EXPECT_FALSE(ReadAll(live_json).empty());
  }
  for (const std::string& path : {recording, live_json, replay_json}) {
    std::filesystem::remove(path);
  }
}

TEST(RecordingCliTest, ErrorsExitTwo) {
  const std::string missing = TempPath("missing.dwrec");
  Outcome no_file = RunCli("report " + missing);
  EXPECT_EQ(no_file.exit_code, 2);
  EXPECT_THAT(no_file.output, HasSubstr("driftwatch: error: cannot open recording " + missing));
  const std::string garbage = TempPath("garbage.dwrec");
  WriteAll(garbage, "not a recording");
  Outcome bad = RunCli("report " + garbage);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr(garbage + ": offset 0: not a driftwatch recording"));
  std::filesystem::remove(garbage);
  for (const char* args : {"report", "report --bogus x", "report a b", "report --json"}) {
    SCOPED_TRACE(args);
    EXPECT_EQ(RunCli(args).exit_code, 2);
  }
  Outcome unwritable = RunCli(
      absl::StrCat("run --record /nonexistent-dir/x.dwrec -- ", FAKE_CENSUS_CLIENT), kShimEnv);
  EXPECT_EQ(unwritable.exit_code, 2);
  EXPECT_THAT(unwritable.output, HasSubstr("cannot create recording /nonexistent-dir/x.dwrec"));
  Outcome help = RunCli("report --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("usage: driftwatch report"));
}

// Symbols come from the files a recording names, on the machine that replays it: the golden
// recording's fake client lives in whatever build tree made it, so function, file, line, the
// offset in the module (which needs the file's program headers) and the reason a frame is
// incomplete are blanked on both sides. Everything else (verdict, processes, kinds, live
// amounts, slopes, modules, addresses) comes from the recorded bytes and must match exactly.
std::string NormalizeSymbols(std::string json) {
  static const std::regex kFunction(R"re("function":"(?:[^"\\]|\\.)*")re");
  static const std::regex kFile(R"re("file":"(?:[^"\\]|\\.)*")re");
  static const std::regex kOffset(R"re("module_offset":"(?:[^"\\]|\\.)*")re");
  static const std::regex kUnresolved(R"re("unresolved":"(?:[^"\\]|\\.)*")re");
  static const std::regex kLine(R"re("line":-?[0-9]+)re");
  json = std::regex_replace(json, kFunction, R"("function":"?")");
  json = std::regex_replace(json, kFile, R"("file":"?")");
  json = std::regex_replace(json, kOffset, R"("module_offset":"?")");
  json = std::regex_replace(json, kUnresolved, R"("unresolved":"?")");
  return std::regex_replace(json, kLine, R"("line":0)");
}

// Regenerate after a deliberate change of the analysis or the JSON:
//   DRIFTWATCH_UPDATE_GOLDEN=1 ctest -R GoldenReport
TEST(GoldenReportTest, ReportJsonMatchesTheCheckedInExpectation) {
  const std::string recording = std::string(GOLDEN_DIR) + "/fake_fork_leak.dwrec";
  const std::string expected_path = std::string(GOLDEN_DIR) + "/fake_fork_leak.expected.json";
  const std::string json_path = TempPath("golden.json");
  Outcome outcome = RunCli(absl::StrCat("report --json ", json_path, " ", recording));
  const std::string actual = NormalizeSymbols(ReadAll(json_path));
  ASSERT_FALSE(actual.empty()) << outcome.output;
  // The exit code follows the verdict, as for a live run (the command exited 0).
  EXPECT_EQ(outcome.exit_code, actual.find(R"("verdict":"drift")") != std::string::npos ? 1 : 0)
      << outcome.output;
  std::filesystem::remove(json_path);
  if (std::getenv("DRIFTWATCH_UPDATE_GOLDEN") != nullptr) {
    WriteAll(expected_path, actual);
    GTEST_SKIP() << "rewrote " << expected_path;
  }
  EXPECT_EQ(actual, ReadAll(expected_path))
      << "driftwatch report output changed; if on purpose, regenerate with "
         "DRIFTWATCH_UPDATE_GOLDEN=1 and review the diff of "
      << expected_path;
}

// Recordings the fuzzer made (tests/fuzz), each once undefined behaviour or a needless 64 MiB
// allocation in the collector. Replayed here, so the ASan+UBSan stage of scripts/test checks
// them on every run: each must give a report or a clear error, never a crash.
class HostileRecordingTest : public testing::TestWithParam<const char*> {};

TEST_P(HostileRecordingTest, ReplaysWithoutOverflowOrHugeAllocation) {
  const std::string path = std::string(HOSTILE_DIR) + "/" + GetParam();
  RunOptions analysis;
  absl::StatusOr<ReplayedRun> replayed = ReplayRecording(path, analysis);
  if (!replayed.ok()) {
    EXPECT_THAT(std::string(replayed.status().message()), testing::HasSubstr(path));
  }
}

INSTANTIATE_TEST_SUITE_P(FuzzFindings, HostileRecordingTest,
                         testing::Values("recording_drift_range_overflow",
                                         "recording_heap_live_overflow",
                                         "recording_event_claims_64mib",
                                         "recording_theil_sen_overflow",
                                         "recording_largest_rise_overflow"));

}  // namespace
}  // namespace dw::report
