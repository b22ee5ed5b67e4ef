// driftwatch_main.cc: the `driftwatch` command line, parsed by CLI11, which generates the help of
// the command and of each subcommand:
//
//   driftwatch run [OPTIONS] [--] COMMAND [ARGS...]
//   driftwatch report [OPTIONS] RECORDING
//   driftwatch collect --socket PATH [OPTIONS]
//   driftwatch env --socket PATH [OPTIONS]
//
// Exit codes (kExit* in exit_codes.h): 0 steady, 1 drift found, 2 usage or set-up error (a
// COMMAND the shim cannot load into included), 3 COMMAND failed before the run ended,
// 4 inconclusive. CLI11 has exit codes of its own for bad usage; every one of them is 2 here,
// with one line on stderr naming the option, and --help and --version exit 0. CLI11 reports
// errors by exception; they are caught in Main and go no further. Single-threaded; never runs
// inside a hook.

#include <pwd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "fmt/format.h"
#include "report/commands/collect_command.h"
#include "report/commands/env_command.h"
#include "report/commands/exit_codes.h"
#include "report/commands/recording.h"
#include "report/commands/run_command.h"
#include "report/commands/shim_locator.h"
#include "report/commands/state_replay.h"
#include "report/outputs/report_output.h"

namespace dw::report {
namespace {

constexpr char kDescription[] =
    "Finds resource drift (memory, fds, threads, timers that keep growing) per call site.";

constexpr char kRunExitCodes[] =
    "exit codes: 0 steady (no drift), 1 drift found, 2 usage or set-up error (also a\n"
    "            COMMAND the shim cannot load into: static, set-ID), 3 COMMAND failed (crash\n"
    "            or non-zero exit) before the run ended, 4 inconclusive (too few censuses,\n"
    "            or a process of the run never sent one)";

constexpr char kReportExitCodes[] =
    "exit codes: 0 steady, 1 drift found, 2 usage error or a missing, corrupt or unsupported\n"
    "            recording, 3 the recorded COMMAND failed before the run ended,\n"
    "            4 inconclusive (too few censuses)";

// CLI11's help, laid out as this command's always was: the usage lines first (lower case;
// `run`'s COMMAND after its options, since CLI11 does not parse it; for `driftwatch` itself one
// line per subcommand), then the description. A subcommand's description starts with a one-line
// summary, which is all the list of subcommands shows.
class UsageFormatter : public CLI::Formatter {
 public:
  // Said after "[OPTIONS]" in `app`'s usage line.
  void SetOperands(const CLI::App* app, std::string operands) { operands_[app] = operands; }

  std::string make_description(const CLI::App*) const override { return ""; }

  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string usage;
    if (app->get_parent() != nullptr) {
      usage = fmt::format("usage: {}\n", Line(app, name));
    } else {
      for (const CLI::App* sub : app->get_subcommands({})) {
        usage += fmt::format("{}{}\n", usage.empty() ? "usage: " : "       ",
                             Line(sub, fmt::format("{} {}", name, sub->get_name())));
      }
      usage += fmt::format("       {} --help | --version\n", name);
    }
    // A subcommand's own help says its whole description after the summary line.
    // (get_description() returns a copy: it is kept here while a view of it is used.)
    const std::string whole = app->get_description();
    absl::string_view description = whole;
    if (app->get_parent() != nullptr) description.remove_prefix(description.find('\n') + 1);
    return fmt::format("{}\n{}\n", usage,
                       std::string(absl::StripLeadingAsciiWhitespace(description)));
  }

  std::string make_subcommand(const CLI::App* sub) const override {
    const std::string& description = sub->get_description();
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_name(), description.substr(0, description.find('\n')),
                             column_width_);
    return out.str();
  }

 private:
  std::string Line(const CLI::App* app, const std::string& name) const {
    // CLI11's own line ("Usage: NAME [OPTIONS] POSITIONALS") without its "Usage: " and newline.
    std::string line = CLI::Formatter::make_usage(app, name);
    line = std::string(absl::StripAsciiWhitespace(line));
    line = std::string(absl::StripPrefix(line, "Usage: "));
    if (auto it = operands_.find(app); it != operands_.end()) line += it->second;
    return line;
  }

  std::map<const CLI::App*, std::string> operands_;
};

// A bad option value: CLI11 hands it to Main's handler, which prints it and exits 2.
[[noreturn]] void Reject(std::string message) { throw CLI::ValidationError(std::move(message)); }

// An option whose value goes through `take` every time it is given, in command-line order (so
// "--sample-bytes 64KiB --mode exact" is exact, as "--mode exact --sample-bytes 64KiB" is not).
CLI::Option* AddOption(CLI::App& command, const std::string& name, const std::string& value_name,
                       const std::string& help, std::function<void(const std::string&)> take) {
  return command.add_option_function<std::string>(name, std::move(take), help)
      ->type_name(value_name)
      ->trigger_on_parse();
}

double ParseSeconds(std::string_view option, const std::string& value, bool zero_allowed) {
  double seconds = 0;
  if (!absl::SimpleAtod(value, &seconds) || !(zero_allowed ? seconds >= 0 : seconds > 0) ||
      seconds > 1e9) {
    Reject(fmt::format("{} wants a {} number of seconds, got '{}'", option,
                       zero_allowed ? "non-negative" : "positive", value));
  }
  return seconds;
}

// "512KiB", "64KiB", "1MiB", "4096B", "4096": 1 B to 1024 MiB.
uint32_t ParseSampleBytes(const std::string& value) {
  absl::string_view amount = value;
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
    Reject(fmt::format("--sample-bytes wants 1 B to 1024 MiB (B, KiB or MiB), got '{}'", value));
  }
  return static_cast<uint32_t>(bytes * scale);
}

// --mode and --sample-bytes into `sample_mean_bytes` (0: exact); `hidden` for `report`, which
// accepts and ignores them (the mode comes from the recording). `sampled_default`: the mode when
// neither is given is sampled (`env`), else exact.
void AddSamplingOptions(CLI::App& command, uint32_t& sample_mean_bytes, bool hidden,
                        bool sampled_default = false) {
  const std::string group = hidden ? "" : "Options";
  AddOption(command, "--mode", "exact|sampled",
            fmt::format("exact{}: every heap block is recorded at its call stack;\n"
                        "sampled{}: heap blocks are sampled by bytes, and heap figures are\n"
                        "unbiased estimates (far cheaper; slow leaks need longer runs,\n"
                        "see docs/SAMPLING.md). fds, threads and timers are exact in both.",
                        sampled_default ? "" : " (default)", sampled_default ? " (default)" : ""),
            [&sample_mean_bytes](const std::string& value) {
              if (value == "exact") {
                sample_mean_bytes = 0;
              } else if (value == "sampled") {
                if (sample_mean_bytes == 0) sample_mean_bytes = kDefaultSampleBytes;
              } else {
                Reject(fmt::format("--mode wants exact or sampled, got '{}'", value));
              }
            })
      ->group(group);
  AddOption(command, "--sample-bytes", "N",
            "sampled mode's mean bytes between samples (default 512KiB;\n"
            "B, KiB or MiB; implies --mode sampled)",
            [&sample_mean_bytes](const std::string& value) {
              sample_mean_bytes = ParseSampleBytes(value);
            })
      ->group(group);
}

uint32_t ParseIntervalMs(const std::string& value) {
  uint32_t ms = 0;
  if (!absl::SimpleAtoi(value, &ms) || ms < 1 || ms > 3'600'000) {
    Reject(fmt::format("--interval wants milliseconds between 1 and 3600000, got '{}'", value));
  }
  return ms;
}

// --socket PATH: absolute, and short enough for the shim.
void AddSocketOption(CLI::App& command, std::string& socket_path, const std::string& help) {
  AddOption(command, "--socket", "PATH", help, [&socket_path](const std::string& value) {
    if (absl::Status status = CheckSocketPath(value); !status.ok()) {
      Reject(fmt::format("--socket: {}", std::string(status.message())));
    }
    socket_path = value;
  })->required();
}

void AddJsonOption(CLI::App& command, std::optional<std::string>& json_path) {
  AddOption(command, "--json", "FILE",
            "also write the verdict as JSON (schema driftwatch.verdict.v1)",
            [&json_path](const std::string& value) { json_path = value; });
}

// The analysis options, shared by every command that analyses.
void AddAnalysisOptions(CLI::App& command, AnalysisOptions& options) {
  AddOption(command, "--warmup", "S",
            "skip the first S seconds of every series before fitting a trend\n"
            "(default: find the end of the warm-up in the data)",
            [&options](const std::string& value) {
              options.warmup_s = ParseSeconds("--warmup", value, /*zero_allowed=*/true);
            });
  AddOption(command, "--budget", "LIST",
            "accepted growth, e.g. heap=10MiB/h,fds=0/h,threads=2/min,timers=1/s\n"
            "(heap in B, KiB, MiB, GiB; counts otherwise; per h, min or s);\n"
            "growth within budget is not drift",
            [&options](const std::string& value) {
              absl::StatusOr<DriftBudgets> budgets = ParseBudgets(value);
              if (!budgets.ok()) Reject(std::string(budgets.status().message()));
              options.budgets = *budgets;
            });
  AddOption(command, "--debug-dir", "DIR",
            "also look for separate debug files in DIR/.build-id/ (repeatable;\n"
            "/usr/lib/debug is always searched)",
            [&options](const std::string& value) { options.debug_dirs.push_back(value); });
}

struct RunCommand {
  RunOptions options;
  std::optional<std::string> json_path;
  std::optional<std::string> record_path;
};

void AddRunCommand(CLI::App& app, UsageFormatter& formatter, RunCommand& run) {
  CLI::App& command = *app.add_subcommand(
      "run",
      "run COMMAND under the driftwatch shim and report the sites that keep growing\n\n"
      "Runs COMMAND with libdriftwatch.so preloaded, collects a census of live resources per\n"
      "call site every interval from it and its children, then reports the sites that keep\n"
      "growing.");
  // The first argument that is not one of run's options starts COMMAND (the "--" before it is
  // needed only when COMMAND starts with '-'); CLI11 leaves it and everything after it alone.
  command.prefix_command();
  formatter.SetOperands(&command, " [--] COMMAND [ARGS...]");
  RunOptions& options = run.options;
  AddOption(command, "--duration", "S",
            "stop COMMAND (SIGTERM, SIGKILL 5 s later) after S seconds; being\n"
            "stopped this way is not a failure. Default: wait until COMMAND exits.",
            [&options](const std::string& value) {
              options.duration_s = ParseSeconds("--duration", value, /*zero_allowed=*/false);
            });
  AddOption(command, "--interval", "MS", "census interval in milliseconds (default 1000)",
            [&options](const std::string& value) { options.interval_ms = ParseIntervalMs(value); });
  AddSamplingOptions(command, options.sample_mean_bytes, /*hidden=*/false);
  AddJsonOption(command, run.json_path);
  AddOption(command, "--record", "FILE",
            "keep every census in FILE, for 'driftwatch report FILE' later",
            [&run](const std::string& value) { run.record_path = value; });
  AddAnalysisOptions(command, options);
  command.footer(fmt::format(
      "environment:\n"
      "  DRIFTWATCH_SHIM  path of libdriftwatch.so (default: next to the driftwatch binary)\n\n{}",
      kRunExitCodes));
}

struct ReportCommand {
  RunOptions options;  // analysis settings only: the command and interval come from the recording
  std::optional<std::string> json_path;
  std::string recording_path;
  ReplayWindow window;  // --since, --until
};

// --since and --until of `report`.
void AddWindowOptions(CLI::App& command, ReplayWindow& window) {
  const auto parse = [](std::string_view option, const std::string& value) {
    absl::StatusOr<uint64_t> time = ParseReplayTime(value, ClockNs(CLOCK_REALTIME));
    if (!time.ok()) Reject(fmt::format("{}: {}", option, std::string(time.status().message())));
    return *time;
  };
  AddOption(
      command, "--since", "TIME",
      "only censuses taken at or after TIME: RFC 3339 with a zone\n"
      "(2026-12-02T02:00:00Z) or before now (-2h, -90m, -1d12h)",
      [&window, parse](const std::string& value) { window.since_ns = parse("--since", value); });
  AddOption(
      command, "--until", "TIME", "only censuses taken at or before TIME (as --since)",
      [&window, parse](const std::string& value) { window.until_ns = parse("--until", value); });
}

void AddReportCommand(CLI::App& app, ReportCommand& report) {
  CLI::App& command = *app.add_subcommand(
      "report",
      "analyse a recording made with 'run --record' or 'collect --state' again, offline\n\n"
      "Analyses a recording made with 'driftwatch run --record RECORDING' again, offline: the\n"
      "same decoding, analysis and output as the live run, so it reproduces the live verdict.\n"
      "RECORDING may be zstd-compressed, and may be what 'collect --state DIR' keeps: a\n"
      "segment, a process's directory (its segments replayed as one stream) or DIR itself.\n"
      "Symbols are resolved against the files named in the recording, on this machine.");
  // Unknown arguments are left in remaining(), so that Main names them itself.
  command.allow_extras();
  command
      .add_option("RECORDING", report.recording_path,
                  "a file written by 'run --record', or a segment or directory of\n"
                  "'collect --state'")
      ->required()
      ->type_name("");
  AddWindowOptions(command, report.window);
  AddJsonOption(command, report.json_path);
  AddAnalysisOptions(command, report.options);
  AddSamplingOptions(command, report.options.sample_mean_bytes, /*hidden=*/true);
  command.footer(kReportExitCodes);
}

constexpr char kCollectFooter[] =
    "Each process connects with LD_PRELOAD=libdriftwatch.so and DRIFTWATCH_SOCKET=PATH\n"
    "('driftwatch env --socket PATH' prints them). Every process lifetime is a series\n"
    "of its own, named by its command name, pid and start time; the log has one line\n"
    "when a process connects, when a site starts or stops drifting (kind, headline\n"
    "frame, slope) and when it ends (its verdict). SIGHUP reopens --log; SIGTERM and\n"
    "SIGINT say where each live process stands and exit 0. With --state, SIGHUP also\n"
    "starts new segments and SIGTERM closes them.\n\n"
    "who may connect: processes of driftwatch's own user and root; others only with\n"
    "--allow-user (each is checked by SO_PEERCRED, docs/SECURITY.md). The shim sends\n"
    "only to a collector of root, its own user or the user it started as.\n\n"
    "exit codes: 0 stopped by SIGTERM or SIGINT, 2 usage or set-up error";

// A user name or a numeric uid.
uid_t ParseUser(const std::string& value) {
  uid_t uid = 0;
  if (absl::SimpleAtoi(value, &uid)) return uid;
  passwd entry{}, *found = nullptr;
  char buffer[4096];
  if (getpwnam_r(value.c_str(), &entry, buffer, sizeof(buffer), &found) != 0 || found == nullptr) {
    Reject(fmt::format("--allow-user: no user '{}'", value));
  }
  return found->pw_uid;
}

// --state and its caps.
void AddStateOptions(CLI::App& command, StateOptions& state) {
  const auto bytes = [](std::string_view option, const std::string& value) {
    absl::StatusOr<uint64_t> amount = ParseByteSize(value);
    if (!amount.ok()) Reject(fmt::format("{} {}", option, std::string(amount.status().message())));
    return *amount;
  };
  AddOption(command, "--state", "DIR",
            "keep rolling zstd recordings of each process in DIR, for\n"
            "'driftwatch report DIR/PROCESS --since TIME' (created if missing)",
            [&state](const std::string& value) { state.dir = value; });
  AddOption(command, "--state-segment-bytes", "N",
            "start a new segment after N bytes of census data (default 4MiB)",
            [&state, bytes](const std::string& value) {
              state.segment_bytes = bytes("--state-segment-bytes", value);
            });
  AddOption(command, "--state-segment-seconds", "S", "or after S seconds (default 3600)",
            [&state](const std::string& value) {
              state.segment_seconds = ParseSeconds("--state-segment-seconds", value, false);
            });
  AddOption(command, "--state-max-bytes", "N",
            "delete the oldest segments when DIR exceeds N (default 1GiB)",
            [&state, bytes](const std::string& value) {
              state.max_bytes = bytes("--state-max-bytes", value);
            });
  AddOption(command, "--state-process-max-bytes", "N",
            "and when one process's segments exceed N (default 256MiB)",
            [&state, bytes](const std::string& value) {
              state.process_max_bytes = bytes("--state-process-max-bytes", value);
            });
  state.driftwatch_version = DRIFTWATCH_VERSION;
}

// --pid, --match, --watch-every: processes watched through /proc (commands/proc_watch.h).
void AddWatchOptions(CLI::App& command, ProcWatchOptions& watch) {
  AddOption(command, "--pid", "PID",
            "watch process PID from outside, through /proc: RSS, threads, fds by\n"
            "type; for what the shim cannot enter (static, Go, set-uid, already\n"
            "running); repeatable",
            [&watch](const std::string& value) {
              pid_t pid = 0;
              if (!absl::SimpleAtoi(value, &pid) || pid <= 0) {
                Reject(fmt::format("--pid wants a process id, got '{}'", value));
              }
              watch.pids.push_back(pid);
            });
  AddOption(command, "--match", "NAME",
            "watch every process named NAME (its command name as ps shows it,\n"
            "or its executable's basename), as --pid does; repeatable",
            [&watch](const std::string& value) {
              if (value.empty() || value.find('/') != std::string::npos) {
                Reject(fmt::format("--match wants a command name without '/', got '{}'", value));
              }
              watch.match_names.push_back(value);
            });
  AddOption(command, "--watch-every", "S", "sample watched processes every S seconds (default 1)",
            [&watch](const std::string& value) {
              watch.interval_s = ParseSeconds("--watch-every", value, false);
            });
}

void AddCollectCommand(CLI::App& app, CollectOptions& options) {
  CLI::App& command = *app.add_subcommand(
      "collect",
      "collect from every process started under the shim, for as long as it runs\n\n"
      "Listens on PATH for any number of processes started under the shim, analyses each\n"
      "live process every few seconds as 'driftwatch run' would, and logs when a site\n"
      "starts or stops drifting. For a staging canary: services run under the shim for\n"
      "days, the collector watches them.");
  AddSocketOption(command, options.socket_path,
                  "listen on PATH (absolute); a stale socket there is replaced\n"
                  "(optional with --pid or --match)");
  command.get_option("--socket")->required(false);
  AddWatchOptions(command, options.watch);
  AddOption(command, "--check-every", "S", "analyse each live process every S seconds (default 5)",
            [&options](const std::string& value) {
              options.check_every_s = ParseSeconds("--check-every", value, false);
            });
  AddOption(command, "--log", "FILE",
            "append the log to FILE, reopened on SIGHUP (default: stderr)",
            [&options](const std::string& value) { options.log_path = value; });
  AddOption(command, "--keep-ended", "N",
            fmt::format("keep the verdicts of the last N ended processes (default {})",
                        EndedProcesses::kDefaultCapacity),
            [&options](const std::string& value) {
              if (!absl::SimpleAtoi(value, &options.keep_ended) || options.keep_ended > 1'000'000) {
                Reject(fmt::format("--keep-ended wants 0 to 1000000, got '{}'", value));
              }
            });
  AddOption(
      command, "--allow-user", "USER", "also admit processes of USER (a name or uid; repeatable)",
      [&options](const std::string& value) { options.allowed_uids.push_back(ParseUser(value)); });
  command.add_flag("--allow-any-user", options.allow_any_uid,
                   "admit processes of every user (any local user can then add\n"
                   "processes to the log)");
  AddOption(command, "--metrics", "HOST:PORT",
            "serve Prometheus metrics at http://HOST:PORT/metrics (docs/PROMETHEUS.md)",
            [&options](const std::string& value) {
              absl::StatusOr<ListenAddress> address = ParseListenAddress(value);
              if (!address.ok()) Reject(std::string(address.status().message()));
              options.metrics = *address;
            });
  AddOption(command, "--metrics-top-sites", "N",
            fmt::format("sites per process with series of their own (default {})",
                        PrometheusOptions::kDefaultTopSites),
            [&options](const std::string& value) {
              size_t& top = options.prometheus.top_sites;
              if (!absl::SimpleAtoi(value, &top) || top > 1000) {
                Reject(fmt::format("--metrics-top-sites wants 0 to 1000, got '{}'", value));
              }
            });
  AddStateOptions(command, options.state);
  AddAnalysisOptions(command, options);
  command.footer(kCollectFooter);
}

struct EnvCommand {
  EnvOptions options;
  std::string format = "shell";
};

void AddEnvCommand(CLI::App& app, EnvCommand& env) {
  CLI::App& command = *app.add_subcommand(
      "env",
      "print the environment that puts a process under the shim, for 'collect'\n\n"
      "Prints the variables that make a process report to the collector on PATH\n"
      "('driftwatch collect --socket PATH'): LD_PRELOAD with the shim's absolute path,\n"
      "DRIFTWATCH_SOCKET and the mode (sampled by default: cheap enough to leave on).");
  EnvOptions& options = env.options;
  AddSocketOption(command, options.shim.socket_path, "the collector's socket (absolute)");
  AddSamplingOptions(command, options.shim.sample_mean_bytes, /*hidden=*/false,
                     /*sampled_default=*/true);
  AddOption(
      command, "--interval", "MS", "census interval in milliseconds (default: the shim's, 1000)",
      [&options](const std::string& value) { options.shim.interval_ms = ParseIntervalMs(value); });
  command
      .add_option("--format", env.format,
                  "shell (default): export lines, for eval \"$(driftwatch env ...)\";\n"
                  "systemd: a [Service] drop-in of Environment= lines;\n"
                  "kubernetes: an env: list for a container spec")
      ->type_name("shell|systemd|kubernetes")
      ->check(CLI::IsMember({"shell", "systemd", "kubernetes"}));
  AddOption(command, "--shim", "PATH",
            "the shim's path as the process sees it (default: the one this\n"
            "driftwatch uses; give it for a container that mounts the shim)",
            [&options](const std::string& value) {
              if (value.empty() || value[0] != '/') {
                Reject(fmt::format("--shim wants an absolute path, got '{}'", value));
              }
              options.shim_path = value;
            });
  command.footer(
      "environment:\n"
      "  DRIFTWATCH_SHIM  path of libdriftwatch.so (default: next to the driftwatch binary)");
}

// A set-up error: one line on stderr, exit 2.
int SetupError(const absl::Status& status) {
  fmt::print(stderr, "driftwatch: error: {}\n", std::string(status.message()));
  return kExitUsage;
}

int UsageError(std::string_view command, std::string_view message);

int Collect(CollectOptions& options) {
  if (options.socket_path.empty() && options.watch.empty()) {
    return UsageError("collect", "--socket is required (or --pid/--match to watch /proc)");
  }
  options.version = DRIFTWATCH_VERSION;
  const absl::Status status = RunCollector(options);
  return status.ok() ? 0 : SetupError(status);
}

int Env(EnvCommand& env) {
  EnvOptions& options = env.options;
  options.format = env.format == "systemd"      ? EnvFormat::kSystemd
                   : env.format == "kubernetes" ? EnvFormat::kKubernetes
                                                : EnvFormat::kShell;
  if (options.shim_path.empty()) {
    absl::StatusOr<std::string> shim = LocateShim();
    if (!shim.ok()) return SetupError(shim.status());
    options.shim_path = *shim;
  }
  fmt::print("{}", RenderEnvironment(options));
  return 0;
}

int UsageError(std::string_view command, std::string_view message) {
  fmt::print(stderr, "driftwatch: error: {}\n(see 'driftwatch{}{} --help')\n", message,
             command.empty() ? "" : " ", command);
  return kExitUsage;
}

int Run(RunCommand& run) {
  RunOptions& options = run.options;
  // Created before the run, so an unwritable path fails before the command starts.
  std::unique_ptr<RecordingWriter> recording;
  if (run.record_path.has_value()) {
    absl::StatusOr<std::unique_ptr<RecordingWriter>> writer = RecordingWriter::Create(
        *run.record_path, options.command, options.interval_ms, DRIFTWATCH_VERSION);
    if (!writer.ok()) return SetupError(writer.status());
    recording = std::move(*writer);
    options.tap = recording.get();
  }

  absl::StatusOr<RunResult> result = RunUnderShim(options);
  if (!result.ok()) return SetupError(result.status());
  // A failed recording is reported after the verdict: the run itself is still worth its output.
  const absl::Status recorded =
      recording != nullptr ? recording->Finish(*result) : absl::OkStatus();
  std::fflush(stdout);
  PrintTerminalReport(*result, stdout);
  if (run.json_path.has_value()) {
    if (absl::Status status = WriteVerdictJson(*result, *run.json_path); !status.ok())
      return SetupError(status);
  }
  if (!recorded.ok()) return SetupError(recorded);
  return ExitCodeFor(*result);
}

int Report(const ReportCommand& report) {
  const std::string& path = report.recording_path;
  absl::StatusOr<ReplayedRun> replay = ReplayPath(path, report.window, report.options);
  if (!replay.ok()) return SetupError(replay.status());
  for (const std::string& warning : replay->warnings) {
    fmt::print(stderr, "driftwatch: warning: {}\n", warning);
  }
  if (replay->start.driftwatch_version != DRIFTWATCH_VERSION) {
    // Fine and often the point (a better analysis), but then the live verdict is not reproduced.
    fmt::print(stderr,
               "driftwatch: note: {} was recorded by driftwatch {}; analysed by {}, whose "
               "verdict may differ from the live one\n",
               path, replay->start.driftwatch_version, DRIFTWATCH_VERSION);
  }
  std::fflush(stderr);
  PrintTerminalReport(replay->result, stdout);
  if (report.json_path.has_value()) {
    if (absl::Status status = WriteVerdictJson(replay->result, *report.json_path); !status.ok())
      return SetupError(status);
  }
  return ExitCodeFor(replay->result);
}

// What CLI11 left unparsed: `run`'s COMMAND (and its arguments), or for `report` nothing but a
// "--" before RECORDING. An option CLI11 did not know is reported here, by name.
std::optional<std::string> CheckOperands(const CLI::App& command,
                                         std::vector<std::string>& operands) {
  for (const std::string& operand : operands) {
    if (command.get_name() == "report" && operand == "--") continue;
    if (operand.size() > 1 && operand[0] == '-') return fmt::format("unknown option {}", operand);
    if (command.get_name() == "run") break;  // COMMAND starts here
    return fmt::format("report takes one RECORDING, got also '{}'", operand);
  }
  return std::nullopt;
}

// A ParseError from CLI11 as this command's exit: help and version to stdout with 0, anything
// else one line on stderr and kExitUsage.
int ParseFailure(const CLI::App& app, const CLI::ParseError& error, std::string_view first_arg) {
  if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(error);
  std::string_view command;
  if (!app.get_subcommands().empty()) command = app.get_subcommands().front()->get_name();
  if (command.empty() && !first_arg.empty()) {
    return UsageError("", first_arg[0] == '-' ? fmt::format("unknown option {}", first_arg)
                                              : fmt::format("unknown command '{}'", first_arg));
  }
  return UsageError(command, error.what());
}

int Main(int argc, char** argv) {
  CLI::App app(kDescription, "driftwatch");
  auto formatter = std::make_shared<UsageFormatter>();
  app.formatter(formatter);
  app.set_version_flag("--version", fmt::format("driftwatch {}", DRIFTWATCH_VERSION),
                       "print the version and exit");
  app.require_subcommand(1);
  app.footer(kRunExitCodes);
  RunCommand run;
  ReportCommand report;
  AddRunCommand(app, *formatter, run);
  AddReportCommand(app, report);
  CollectOptions collect;
  AddCollectCommand(app, collect);
  EnvCommand env;
  AddEnvCommand(app, env);

  if (argc < 2) {
    fmt::print(stderr, "{}", app.help());
    return kExitUsage;
  }
  const std::string_view first_arg = argv[1];
  if (first_arg == "help") {
    fmt::print("{}", app.help());
    return 0;
  }
  // For `run`, everything after the first "--" is COMMAND: CLI11 never sees it, so a COMMAND
  // argument that looks like one of run's options stays the command's.
  int parsed = argc;
  if (first_arg == "run") {
    for (int i = 2; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--") {
        parsed = i;
        break;
      }
    }
  }
  try {
    app.parse(parsed, argv);
  } catch (const CLI::ParseError& error) {
    return ParseFailure(app, error, first_arg);
  }
  CLI::App& command = *app.get_subcommands().front();
  std::vector<std::string> operands = command.remaining();
  if (auto failure = CheckOperands(command, operands); failure.has_value()) {
    return UsageError(command.get_name(), *failure);
  }
  if (command.get_name() == "report") return Report(report);
  if (command.get_name() == "collect") return Collect(collect);
  if (command.get_name() == "env") return Env(env);

  run.options.command = std::move(operands);
  if (parsed < argc && !run.options.command.empty()) run.options.command.emplace_back("--");
  for (int i = parsed + 1; i < argc; ++i) run.options.command.emplace_back(argv[i]);
  if (run.options.command.empty()) return UsageError("run", "no COMMAND given");
  return Run(run);
}

}  // namespace
}  // namespace dw::report

int main(int argc, char** argv) { return dw::report::Main(argc, argv); }
