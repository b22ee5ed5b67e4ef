// Tests of the `driftwatch` binary: flags, exit codes, JSON file and the terminal report.
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/report/cli_runner.h"

namespace {

using ::testing::HasSubstr;

using dw::report::cli::kShimEnv;
using dw::report::cli::Outcome;
using dw::report::cli::RunCli;
using dw::report::cli::RunCliStderr;

TEST(CliTest, Help) {
  Outcome main_help = RunCli("--help");
  EXPECT_EQ(main_help.exit_code, 0);
  EXPECT_THAT(main_help.output, HasSubstr("usage: driftwatch run"));
  Outcome run_help = RunCli("run --help");
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_THAT(run_help.output, HasSubstr("--duration S"));
}

TEST(CliTest, UsageErrorsExitTwo) {
  for (const char* args :
       {"", "frobnicate", "run", "run --bogus -- true", "run --duration -- true",
        "run --duration abc -- true", "run --interval 0 -- true", "run --json", "run --",
        "run --debug-dir", "run --debug-dir= -- true", "report --debug-dir"}) {
    SCOPED_TRACE(args);
    Outcome outcome = RunCli(args, kShimEnv);
    EXPECT_EQ(outcome.exit_code, 2);
    EXPECT_THAT(outcome.output, HasSubstr("driftwatch"));
  }
  Outcome bad_flag = RunCli("run --bogus -- true");
  EXPECT_THAT(bad_flag.output, HasSubstr("driftwatch: error: unknown option --bogus"));
  Outcome empty_debug_dir = RunCli("run --debug-dir= -- true", kShimEnv);
  EXPECT_THAT(empty_debug_dir.output, HasSubstr("driftwatch: error: --debug-dir"));
}

// Every subcommand has generated help, on stdout with exit 0, naming each of its options with
// its value; and the help of `driftwatch` itself gives every subcommand's usage line.
TEST(CliTest, EverySubcommandHasHelp) {
  const struct {
    const char* args;
    std::vector<std::string> says;
  } cases[] = {
      {"--help",
       {"usage: driftwatch run [OPTIONS] [--] COMMAND [ARGS...]",
        "driftwatch report [OPTIONS] RECORDING", "--version", "exit codes:"}},
      {"-h", {"usage: driftwatch run", "driftwatch report"}},
      {"help", {"usage: driftwatch run", "driftwatch report"}},
      {"run --help",
       {"usage: driftwatch run [OPTIONS] [--] COMMAND [ARGS...]", "--duration S", "--interval MS",
        "--mode exact|sampled", "--sample-bytes N", "--json FILE", "--record FILE", "--warmup S",
        "--budget LIST", "--debug-dir DIR", "DRIFTWATCH_SHIM", "exit codes:"}},
      {"run -h", {"usage: driftwatch run"}},
      {"report --help",
       {"usage: driftwatch report [OPTIONS] RECORDING", "--json FILE", "--warmup S",
        "--budget LIST", "--debug-dir DIR", "exit codes:"}},
      {"report -h", {"usage: driftwatch report"}},
  };
  for (const auto& [args, says] : cases) {
    SCOPED_TRACE(args);
    Outcome outcome = RunCli(args);
    EXPECT_EQ(outcome.exit_code, 0);
    for (const std::string& text : says) EXPECT_THAT(outcome.output, HasSubstr(text));
  }
  Outcome version = RunCli("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.output, ::testing::StartsWith("driftwatch "));
  // The options of `run` stop where COMMAND starts: COMMAND's own --help is COMMAND's.
  Outcome command_help = RunCli("run -- sh -c 'echo \"args:$*\"' sh --help", kShimEnv);
  EXPECT_THAT(command_help.output, HasSubstr("args:--help"));
  EXPECT_THAT(command_help.output, ::testing::Not(HasSubstr("usage: driftwatch")));
}

// Bad options and values exit 2 with one error on stderr that names the option, whatever part
// of the parser finds them (CLI11 itself, or the check of the value).
TEST(CliTest, BadOptionsAndValuesExitTwoNamingTheOption) {
  const struct {
    const char* args;
    const char* says;
  } cases[] = {
      {"--bogus", "unknown option --bogus"},
      {"frobnicate", "unknown command 'frobnicate'"},
      {"run --bogus -- true", "unknown option --bogus"},
      {"run --bogus=1 true", "unknown option --bogus=1"},
      {"run --duration", "--duration"},
      {"run --duration 0 -- true", "--duration wants a positive number of seconds, got '0'"},
      {"run --duration=-3 true", "--duration wants a positive number of seconds, got '-3'"},
      {"run --interval 5000000 true", "--interval wants milliseconds between 1 and 3600000"},
      {"run --interval x true", "--interval"},
      {"run --mode fast -- true", "--mode wants exact or sampled, got 'fast'"},
      {"run --sample-bytes 0 -- true", "--sample-bytes wants 1 B to 1024 MiB"},
      {"run --sample-bytes 2048MiB -- true", "--sample-bytes wants 1 B to 1024 MiB"},
      {"run --sample-bytes 1GiB -- true", "--sample-bytes wants 1 B to 1024 MiB"},
      {"run --warmup -1 -- true", "--warmup wants a non-negative number of seconds"},
      {"run --budget heap=lots -- true", "--budget"},
      {"run --record -- true", "--record"},
      {"run --json", "--json"},
      {"report --warmup abc x.dwrec", "--warmup wants a non-negative number of seconds"},
      {"report --budget fds x.dwrec", "--budget"},
      {"report --json", "--json"},
      {"report --bogus x.dwrec", "unknown option --bogus"},
      {"report a.dwrec b.dwrec", "report takes one RECORDING, got also 'b.dwrec'"},
      {"report", "RECORDING"},
  };
  for (const auto& [args, says] : cases) {
    SCOPED_TRACE(args);
    // stderr only: the error must be there, and nothing on stdout.
    Outcome outcome = RunCliStderr(args, kShimEnv);
    EXPECT_EQ(outcome.exit_code, 2);
    EXPECT_THAT(outcome.output, HasSubstr(std::string("driftwatch: error: ")));
    EXPECT_THAT(outcome.output, HasSubstr(says));
  }
}

// Options take effect in the order given, and the last of a repeated option wins (a later
// --debug-dir adds to the earlier ones).
TEST(CliTest, OptionsApplyInTheOrderGiven) {
  // --mode exact after --sample-bytes is exact: no DRIFTWATCH_MODE reaches the command.
  Outcome exact = RunCli(
      "run --sample-bytes 64KiB --mode exact -- sh -c 'echo mode=$DRIFTWATCH_MODE'", kShimEnv);
  EXPECT_THAT(exact.output, HasSubstr("mode=\n")) << exact.output;
  Outcome sampled = RunCli(
      "run --mode exact --sample-bytes=64KiB -- sh -c 'echo mode=$DRIFTWATCH_MODE "
      "bytes=$DRIFTWATCH_SAMPLE_BYTES'",
      kShimEnv);
  EXPECT_THAT(sampled.output, HasSubstr("mode=sampled bytes=65536")) << sampled.output;
  Outcome interval = RunCli(
      "run --interval 50 --interval=70 sh -c 'echo interval=$DRIFTWATCH_INTERVAL_MS'", kShimEnv);
  EXPECT_THAT(interval.output, HasSubstr("interval=70")) << interval.output;
}

TEST(CliTest, SetUpErrorsExitTwo) {
  Outcome no_shim = RunCli("run -- true", "DRIFTWATCH_SHIM=/nonexistent/libdriftwatch.so");
  EXPECT_EQ(no_shim.exit_code, 2);
  EXPECT_THAT(no_shim.output, HasSubstr("driftwatch: error: DRIFTWATCH_SHIM="));
  Outcome no_command = RunCli("run -- driftwatch-no-such-command", kShimEnv);
  EXPECT_EQ(no_command.exit_code, 2);
  EXPECT_THAT(no_command.output, HasSubstr("command not found"));
}

TEST(CliTest, DriftExitsOneAndWritesJson) {
  const std::string json_path =
      (std::filesystem::temp_directory_path() / ("dw-cli-" + std::to_string(getpid()) + ".json"))
          .string();
  Outcome outcome = RunCli(std::string("run --interval 20 --json ") + json_path + " -- " +
                               FAKE_CENSUS_CLIENT + " --censuses 25",
                           kShimEnv);
  EXPECT_EQ(outcome.exit_code, 1) << outcome.output;
  EXPECT_THAT(outcome.output, HasSubstr("DRIFT"));
  EXPECT_THAT(outcome.output, HasSubstr("LeakHere (")) << "headline frame with file:line";
  EXPECT_THAT(outcome.output, HasSubstr("MiB/h"));
  std::ifstream in(json_path);
  std::stringstream json;
  json << in.rdbuf();
  EXPECT_THAT(json.str(), HasSubstr(R"("verdict":"drift")"));
  EXPECT_THAT(json.str(), HasSubstr(R"("interval_ms":20)"));
  std::filesystem::remove(json_path);
}

TEST(CliTest, FailedCommandExitsThree) {
  Outcome outcome = RunCli(
      std::string("run --interval 20 -- ") + FAKE_CENSUS_CLIENT + " --censuses 3 --exit-code 4",
      kShimEnv);
  EXPECT_EQ(outcome.exit_code, 3) << outcome.output;
  EXPECT_THAT(outcome.output, HasSubstr("failed"));
}

TEST(CliTest, NoCensusIsInconclusiveAndExitsFour) {
  Outcome outcome = RunCli("run -- true", kShimEnv);
  EXPECT_EQ(outcome.exit_code, 4) << "inconclusive must not look like success\n" << outcome.output;
  EXPECT_THAT(outcome.output, HasSubstr("inconclusive"));
}

}  // namespace
