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

#include "tests/report/cli_runner.h"

namespace {

using ::testing::HasSubstr;

using dw::report::cli::kShimEnv;
using dw::report::cli::Outcome;
using dw::report::cli::RunCli;

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
  EXPECT_THAT(empty_debug_dir.output, HasSubstr("--debug-dir wants a directory"));
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
