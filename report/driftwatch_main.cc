// driftwatch_main.cc: the `driftwatch` command line.
//
//   driftwatch run [--duration S] [--interval MS] [--json FILE] -- COMMAND [ARGS...]
//
// Exit codes: 0 no drift, 1 drift found, 2 usage or set-up error, 3 COMMAND failed before the run
// ended. Single-threaded; never runs inside a hook.

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "report/report_output.h"
#include "report/run_command.h"

namespace dw::report {
namespace {

constexpr int kExitUsage = 2;

constexpr char kMainUsage[] =
    "usage: driftwatch run [--duration S] [--interval MS] [--json FILE] -- COMMAND [ARGS...]\n"
    "       driftwatch --help | --version\n"
    "\n"
    "Finds resource drift (memory that keeps growing) per call site in a running program.\n"
    "\n"
    "commands:\n"
    "  run   run COMMAND under the driftwatch shim and report sites that keep growing\n"
    "\n"
    "exit codes: 0 no drift, 1 drift found, 2 usage or set-up error,\n"
    "            3 COMMAND failed (crash or non-zero exit) before the run ended\n";

constexpr char kRunUsage[] =
    "usage: driftwatch run [--duration S] [--interval MS] [--json FILE] -- COMMAND [ARGS...]\n"
    "\n"
    "Runs COMMAND with libdriftwatch.so preloaded, collects a census of live resources per call\n"
    "site every interval from it and its children, then reports the sites that keep growing.\n"
    "\n"
    "options:\n"
    "  --duration S    stop COMMAND (SIGTERM, SIGKILL 5 s later) after S seconds; being\n"
    "                  stopped this way is not a failure. Default: wait until COMMAND exits.\n"
    "  --interval MS   census interval in milliseconds (default 1000)\n"
    "  --json FILE     also write the verdict as JSON (schema driftwatch.verdict.v1)\n"
    "  -h, --help      show this help\n"
    "\n"
    "environment:\n"
    "  DRIFTWATCH_SHIM  path of libdriftwatch.so (default: next to the driftwatch binary)\n"
    "\n"
    "exit codes: 0 no drift, 1 drift found, 2 usage or set-up error,\n"
    "            3 COMMAND failed (crash or non-zero exit) before the run ended\n";

int UsageError(std::string_view message) {
  fmt::print(stderr, "driftwatch: error: {}\n(see 'driftwatch run --help')\n", message);
  return kExitUsage;
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
    if (auto value = TakeValue(args, i, "--json", error); value.has_value()) {
      if (!error.empty()) return UsageError(error);
      if (value->empty()) return UsageError("--json wants a file name");
      json_path = *value;
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') return UsageError(fmt::format("unknown option {}", arg));
    break;  // the command starts here (the "--" is optional when COMMAND does not start with -)
  }
  for (; i < args.size(); ++i) options.command.emplace_back(args[i]);
  if (options.command.empty()) return UsageError("no COMMAND given");

  absl::StatusOr<RunResult> result = RunUnderShim(options);
  if (!result.ok()) {
    fmt::print(stderr, "driftwatch: error: {}\n", std::string(result.status().message()));
    return kExitUsage;
  }
  std::fflush(stdout);
  PrintTerminalReport(*result, stdout);
  if (json_path.has_value()) {
    if (absl::Status status = WriteVerdictJson(*result, *json_path); !status.ok()) {
      fmt::print(stderr, "driftwatch: error: {}\n", std::string(status.message()));
      return kExitUsage;
    }
  }
  return ExitCodeFor(*result);
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
  fmt::print(stderr, "driftwatch: error: unknown command '{}'\n{}", args[0], kMainUsage);
  return kExitUsage;
}

}  // namespace
}  // namespace dw::report

int main(int argc, char** argv) { return dw::report::Main(argc, argv); }
