// driftwatch_main.cc: the `driftwatch` command line.
//
//   driftwatch run [--duration S] [--interval MS] [--json FILE] [--warmup S] [--budget LIST]
//                  [--debug-dir DIR] -- COMMAND [ARGS...]
//   driftwatch report [--json FILE] [--warmup S] [--budget LIST] [--debug-dir DIR] RECORDING
//
// Exit codes (kExit* in exit_codes.h): 0 steady, 1 drift found, 2 usage or set-up error (a
// COMMAND the shim cannot load into included), 3 COMMAND failed before the run ended,
// 4 inconclusive. Single-threaded; never runs inside a hook.

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "fmt/format.h"
#include "report/commands/recording.h"
#include "report/commands/run_command.h"
#include "report/outputs/report_output.h"

namespace dw::report {
namespace {

constexpr char kMainUsage[] =
    "usage: driftwatch run [--duration S] [--interval MS] [--mode exact|sampled]\n"
    "                      [--sample-bytes N] [--json FILE] [--record FILE]\n"
    "                      [--warmup S] [--budget LIST] [--debug-dir DIR]\n"
    "                      -- COMMAND [ARGS...]\n"
    "       driftwatch report [--json FILE] [--warmup S] [--budget LIST] [--debug-dir DIR]\n"
    "                         RECORDING\n"
    "       driftwatch --help | --version\n"
    "\n"
    "Finds resource drift (memory, fds, threads, timers that keep growing) per call site.\n"
    "\n"
    "commands:\n"
    "  run     run COMMAND under the driftwatch shim and report sites that keep growing\n"
    "  report  analyse a recording made with 'run --record' again, offline\n"
    "\n"
    "exit codes: 0 steady (no drift), 1 drift found, 2 usage or set-up error (also a\n"
    "            COMMAND the shim cannot load into: static, set-ID), 3 COMMAND failed (crash\n"
    "            or non-zero exit) before the run ended, 4 inconclusive (too few censuses,\n"
    "            or a process of the run never sent one)\n";

constexpr char kRunUsage[] =
    "usage: driftwatch run [--duration S] [--interval MS] [--mode exact|sampled]\n"
    "                      [--sample-bytes N] [--json FILE] [--record FILE]\n"
    "                      [--warmup S] [--budget LIST] [--debug-dir DIR]\n"
    "                      -- COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND with libdriftwatch.so preloaded, collects a census of live resources per call\n"
    "site every interval from it and its children, then reports the sites that keep growing.\n"
    "\n"
    "options:\n"
    "  --duration S    stop COMMAND (SIGTERM, SIGKILL 5 s later) after S seconds; being\n"
    "                  stopped this way is not a failure. Default: wait until COMMAND exits.\n"
    "  --interval MS   census interval in milliseconds (default 1000)\n"
    "  --mode M        exact (default): every heap block is recorded at its call stack;\n"
    "                  sampled: heap blocks are sampled by bytes, and heap figures are\n"
    "                  unbiased estimates (far cheaper; slow leaks need longer runs,\n"
    "                  see docs/SAMPLING.md). fds, threads and timers are exact in both.\n"
    "  --sample-bytes N  sampled mode's mean bytes between samples (default 512KiB;\n"
    "                  B, KiB or MiB; implies --mode sampled)\n"
    "  --json FILE     also write the verdict as JSON (schema driftwatch.verdict.v1)\n"
    "  --record FILE   keep every census in FILE, for 'driftwatch report FILE' later\n"
    "  --warmup S      skip the first S seconds of every series before fitting a trend\n"
    "                  (default: find the end of the warm-up in the data)\n"
    "  --budget LIST   accepted growth, e.g. heap=10MiB/h,fds=0/h,threads=2/min,timers=1/s\n"
    "                  (heap in B, KiB, MiB, GiB; counts otherwise; per h, min or s);\n"
    "                  growth within budget is not drift\n"
    "  --debug-dir DIR also look for separate debug files in DIR/.build-id/ (repeatable;\n"
    "                  /usr/lib/debug is always searched)\n"
    "  -h, --help      show this help\n"
    "\n"
    "environment:\n"
    "  DRIFTWATCH_SHIM  path of libdriftwatch.so (default: next to the driftwatch binary)\n"
    "\n"
    "exit codes: 0 steady (no drift), 1 drift found, 2 usage or set-up error (also a\n"
    "            COMMAND the shim cannot load into: static, set-ID), 3 COMMAND failed (crash\n"
    "            or non-zero exit) before the run ended, 4 inconclusive (too few censuses,\n"
    "            or a process of the run never sent one)\n";

int UsageError(std::string_view message) {
  fmt::print(stderr, "driftwatch: error: {}\n(see 'driftwatch run --help')\n", message);
  return kExitUsage;
}

std::optional<std::string> TakeValue(const std::vector<std::string_view>& args, size_t& i,
                                     std::string_view name, std::string& error);

// The analysis flags, shared by every command that analyses (--warmup, --budget, --debug-dir).
// Returns
// nullopt when args[i] is not one of them, else an empty string on success or the error text.
std::optional<std::string> TakeAnalysisOption(const std::vector<std::string_view>& args, size_t& i,
                                              RunOptions& options) {
  std::string error;
  if (auto value = TakeValue(args, i, "--warmup", error); value.has_value()) {
    if (!error.empty()) return error;
    double seconds = 0;
    if (!absl::SimpleAtod(*value, &seconds) || !(seconds >= 0) || seconds > 1e9) {
      return fmt::format("--warmup wants a non-negative number of seconds, got '{}'", *value);
    }
    options.warmup_s = seconds;
    return std::string();
  }
  if (auto value = TakeValue(args, i, "--debug-dir", error); value.has_value()) {
    if (!error.empty()) return error;
    if (value->empty()) return std::string("--debug-dir wants a directory");
    options.debug_dirs.push_back(*value);
    return std::string();
  }
  if (auto value = TakeValue(args, i, "--budget", error); value.has_value()) {
    if (!error.empty()) return error;
    absl::StatusOr<DriftBudgets> budgets = ParseBudgets(*value);
    if (!budgets.ok()) return std::string(budgets.status().message());
    options.budgets = *budgets;
    return std::string();
  }
  return std::nullopt;
}

// --mode and --sample-bytes. Returns nullopt when args[i] is neither, else an empty string on
// success or the error text.
std::optional<std::string> TakeSamplingOption(const std::vector<std::string_view>& args, size_t& i,
                                              RunOptions& options) {
  std::string error;
  if (auto value = TakeValue(args, i, "--mode", error); value.has_value()) {
    if (!error.empty()) return error;
    if (*value == "exact") {
      options.sample_mean_bytes = 0;
    } else if (*value == "sampled") {
      if (options.sample_mean_bytes == 0) options.sample_mean_bytes = kDefaultSampleBytes;
    } else {
      return fmt::format("--mode wants exact or sampled, got '{}'", *value);
    }
    return std::string();
  }
  if (auto value = TakeValue(args, i, "--sample-bytes", error); value.has_value()) {
    if (!error.empty()) return error;
    absl::string_view amount = *value;
    uint64_t scale = 1;
    if (absl::ConsumeSuffix(&amount, "MiB")) {
      scale = 1024 * 1024;
    } else if (absl::ConsumeSuffix(&amount, "KiB")) {
      scale = 1024;
    } else {
      absl::ConsumeSuffix(&amount, "B");
    }
    uint64_t bytes = 0;
    if (!absl::SimpleAtoi(amount, &bytes) || bytes == 0 || bytes > (uint64_t{1} << 30) / scale) {
      return fmt::format("--sample-bytes wants 1 B to 1024 MiB (B, KiB or MiB), got '{}'", *value);
    }
    options.sample_mean_bytes = static_cast<uint32_t>(bytes * scale);
    return std::string();
  }
  return std::nullopt;
}

// Accepts "--name VALUE" and "--name=VALUE". Returns nullopt when args[i] is not --name; sets
// `error` when the value is missing.
std::optional<std::string> TakeValue(const std::vector<std::string_view>& args, size_t& i,
                                     std::string_view name, std::string& error) {
  const std::string_view arg = args[i];
  if (arg == name) {
    if (i + 1 >= args.size()) {
      error = fmt::format("{} needs a value", name);
      return std::string();
    }
    return std::string(args[++i]);
  }
  if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
    return std::string(arg.substr(name.size() + 1));
  }
  return std::nullopt;
}

int Run(const std::vector<std::string_view>& args) {
  RunOptions options;
  std::optional<std::string> json_path;
  std::optional<std::string> record_path;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    std::string error;
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      fmt::print("{}", kRunUsage);
      return 0;
    }
    if (auto value = TakeValue(args, i, "--duration", error); value.has_value()) {
      if (!error.empty()) return UsageError(error);
      double seconds = 0;
      if (!absl::SimpleAtod(*value, &seconds) || !(seconds > 0) || seconds > 1e9) {
        return UsageError(
            fmt::format("--duration wants a positive number of seconds, got '{}'", *value));
      }
      options.duration_s = seconds;
      continue;
    }
    if (auto value = TakeValue(args, i, "--interval", error); value.has_value()) {
      if (!error.empty()) return UsageError(error);
      uint32_t ms = 0;
      if (!absl::SimpleAtoi(*value, &ms) || ms < 1 || ms > 3'600'000) {
        return UsageError(
            fmt::format("--interval wants milliseconds between 1 and 3600000, got '{}'", *value));
      }
      options.interval_ms = ms;
      continue;
    }
    if (auto failure = TakeSamplingOption(args, i, options); failure.has_value()) {
      if (!failure->empty()) return UsageError(*failure);
      continue;
    }
    if (auto value = TakeValue(args, i, "--json", error); value.has_value()) {
      if (!error.empty()) return UsageError(error);
      if (value->empty()) return UsageError("--json wants a file name");
      json_path = *value;
      continue;
    }
    if (auto failure = TakeAnalysisOption(args, i, options); failure.has_value()) {
      if (!failure->empty()) return UsageError(*failure);
      continue;
    }
    if (auto value = TakeValue(args, i, "--record", error); value.has_value()) {
      if (!error.empty()) return UsageError(error);
      if (value->empty()) return UsageError("--record wants a file name");
      record_path = *value;
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') return UsageError(fmt::format("unknown option {}", arg));
    break;  // the command starts here (the "--" is optional when COMMAND does not start with -)
  }
  for (; i < args.size(); ++i) options.command.emplace_back(args[i]);
  if (options.command.empty()) return UsageError("no COMMAND given");

  // Created before the run, so an unwritable path fails before the command starts.
  std::unique_ptr<RecordingWriter> recording;
  if (record_path.has_value()) {
    absl::StatusOr<std::unique_ptr<RecordingWriter>> writer = RecordingWriter::Create(
        *record_path, options.command, options.interval_ms, DRIFTWATCH_VERSION);
    if (!writer.ok()) {
      fmt::print(stderr, "driftwatch: error: {}\n", std::string(writer.status().message()));
      return kExitUsage;
    }
    recording = std::move(*writer);
    options.tap = recording.get();
  }

  absl::StatusOr<RunResult> result = RunUnderShim(options);
  if (!result.ok()) {
    fmt::print(stderr, "driftwatch: error: {}\n", std::string(result.status().message()));
    return kExitUsage;
  }
  // A failed recording is reported after the verdict: the run itself is still worth its output.
  const absl::Status recorded =
      recording != nullptr ? recording->Finish(*result) : absl::OkStatus();
  std::fflush(stdout);
  PrintTerminalReport(*result, stdout);
  if (json_path.has_value()) {
    if (absl::Status status = WriteVerdictJson(*result, *json_path); !status.ok()) {
      fmt::print(stderr, "driftwatch: error: {}\n", std::string(status.message()));
      return kExitUsage;
    }
  }
  if (!recorded.ok()) {
    fmt::print(stderr, "driftwatch: error: {}\n", std::string(recorded.message()));
    return kExitUsage;
  }
  return ExitCodeFor(*result);
}

constexpr char kReportUsage[] =
    "usage: driftwatch report [--json FILE] [--warmup S] [--budget LIST] [--debug-dir DIR]\n"
    "                         RECORDING\n"
    "\n"
    "Analyses a recording made with 'driftwatch run --record RECORDING' again, offline: the same\n"
    "decoding, analysis and output as the live run, so it reproduces the live verdict.\n"
    "Symbols are resolved against the files named in the recording, on this machine.\n"
    "\n"
    "options:\n"
    "  --json FILE     also write the verdict as JSON (schema driftwatch.verdict.v1)\n"
    "  --warmup S      skip the first S seconds of every series before fitting a trend\n"
    "                  (default: find the end of the warm-up in the data)\n"
    "  --budget LIST   accepted growth, e.g. heap=10MiB/h,fds=0/h (as for 'run')\n"
    "  --debug-dir DIR also look for separate debug files in DIR/.build-id/ (repeatable)\n"
    "  -h, --help      show this help\n"
    "\n"
    "exit codes: 0 steady, 1 drift found, 2 usage error or a missing, corrupt or unsupported\n"
    "            recording, 3 the recorded COMMAND failed before the run ended,\n"
    "            4 inconclusive (too few censuses)\n";

int ReportUsageError(std::string_view message) {
  fmt::print(stderr, "driftwatch: error: {}\n(see 'driftwatch report --help')\n", message);
  return kExitUsage;
}

int Report(const std::vector<std::string_view>& args) {
  RunOptions options;  // analysis settings only: the command and interval come from the recording
  std::optional<std::string> json_path;
  std::optional<std::string> recording_path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    std::string error;
    if (arg == "-h" || arg == "--help") {
      fmt::print("{}", kReportUsage);
      return 0;
    }
    if (auto failure = TakeSamplingOption(args, i, options); failure.has_value()) {
      if (!failure->empty()) return UsageError(*failure);
      continue;
    }
    if (auto value = TakeValue(args, i, "--json", error); value.has_value()) {
      if (!error.empty()) return ReportUsageError(error);
      if (value->empty()) return ReportUsageError("--json wants a file name");
      json_path = *value;
      continue;
    }
    if (auto failure = TakeAnalysisOption(args, i, options); failure.has_value()) {
      if (!failure->empty()) return ReportUsageError(*failure);
      continue;
    }
    if (arg == "--" && i + 1 < args.size()) {
      if (recording_path.has_value() || i + 2 < args.size()) {
        return ReportUsageError("report takes one RECORDING");
      }
      recording_path = std::string(args[++i]);
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      return ReportUsageError(fmt::format("unknown option {}", arg));
    }
    if (recording_path.has_value()) return ReportUsageError("report takes one RECORDING");
    recording_path = std::string(arg);
  }
  if (!recording_path.has_value()) return ReportUsageError("no RECORDING given");

  absl::StatusOr<ReplayedRun> replay = ReplayRecording(*recording_path, options);
  if (!replay.ok()) {
    fmt::print(stderr, "driftwatch: error: {}\n", std::string(replay.status().message()));
    return kExitUsage;
  }
  for (const std::string& warning : replay->warnings) {
    fmt::print(stderr, "driftwatch: warning: {}\n", warning);
  }
  if (replay->start.driftwatch_version != DRIFTWATCH_VERSION) {
    // Fine and often the point (a better analysis), but then the live verdict is not reproduced.
    fmt::print(stderr,
               "driftwatch: note: {} was recorded by driftwatch {}; analysed by {}, whose "
               "verdict may differ from the live one\n",
               *recording_path, replay->start.driftwatch_version, DRIFTWATCH_VERSION);
  }
  std::fflush(stderr);
  PrintTerminalReport(replay->result, stdout);
  if (json_path.has_value()) {
    if (absl::Status status = WriteVerdictJson(replay->result, *json_path); !status.ok()) {
      fmt::print(stderr, "driftwatch: error: {}\n", std::string(status.message()));
      return kExitUsage;
    }
  }
  return ExitCodeFor(replay->result);
}

int Main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    fmt::print(stderr, "{}", kMainUsage);
    return kExitUsage;
  }
  if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    fmt::print("{}", kMainUsage);
    return 0;
  }
  if (args[0] == "--version") {
    fmt::print("driftwatch {}\n", DRIFTWATCH_VERSION);
    return 0;
  }
  if (args[0] == "run") return Run(std::vector<std::string_view>(args.begin() + 1, args.end()));
  if (args[0] == "report") {
    return Report(std::vector<std::string_view>(args.begin() + 1, args.end()));
  }
  fmt::print(stderr, "driftwatch: error: unknown command '{}'\n{}", args[0], kMainUsage);
  return kExitUsage;
}

}  // namespace
}  // namespace dw::report

int main(int argc, char** argv) { return dw::report::Main(argc, argv); }
