// cli_runner.h: runs the built driftwatch binary from a test and captures what it printed.
//
// Thread-safety: call from the test's main thread. Allocation: yes (test code). Never runs
// inside a hook. pre: the including target defines DRIFTWATCH_CLI (the binary) and NOOP_SHIM
// (an empty shared object to preload in place of the shim).
#pragma once

#include <stdio.h>
#include <sys/wait.h>

#include <string>

namespace dw::report::cli {

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `command` through the shell: its exit code and what it printed on stdout.
inline Outcome RunShell(const std::string& command) {
  Outcome outcome;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return outcome;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) outcome.output.append(buffer, n);
  const int status = pclose(pipe);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return outcome;
}

// Runs `env DRIFTWATCH_CLI args` through the shell; output is stdout and stderr.
inline Outcome RunCli(const std::string& args, const std::string& env = "") {
  return RunShell(env + " " + DRIFTWATCH_CLI + " " + args + " 2>&1");
}

// As RunCli, but output is stderr alone (stdout is thrown away).
inline Outcome RunCliStderr(const std::string& args, const std::string& env = "") {
  return RunShell(env + " " + DRIFTWATCH_CLI + " " + args + " 2>&1 >/dev/null");
}

// Makes the CLI preload the empty stand-in instead of the real shim.
inline const std::string kShimEnv = std::string("DRIFTWATCH_SHIM=") + NOOP_SHIM;

}  // namespace dw::report::cli
