#include "report/commands/env_command.h"

#include <sys/un.h>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"

namespace dw::report {
namespace {

constexpr std::string_view kVariableNames[] = {"DRIFTWATCH_SOCKET", "DRIFTWATCH_INTERVAL_MS",
                                               "DRIFTWATCH_MODE", "DRIFTWATCH_SAMPLE_BYTES"};

// 'value' for a POSIX shell: nothing inside single quotes is special but the quote itself.
std::string ShellQuote(std::string_view value) {
  std::string quoted = "'";
  for (char c : value) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// NAME=value for systemd's Environment=: '%' starts a specifier, and a value with blanks,
// quotes or backslashes is quoted whole.
std::string SystemdAssignment(std::string_view name, std::string_view value) {
  std::string escaped;
  bool quote = false;
  for (char c : value) {
    if (c == '%') {
      escaped += "%%";
      continue;
    }
    if (c == '"' || c == '\\') escaped += '\\';
    quote |= c == ' ' || c == '\t' || c == '"' || c == '\\' || c == '\'';
    escaped += c;
  }
  const std::string assignment = fmt::format("{}={}", name, escaped);
  return quote ? fmt::format("\"{}\"", assignment) : assignment;
}

// A YAML double-quoted scalar.
std::string YamlQuote(std::string_view value) {
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ShimVariables(const ShimSettings& settings) {
  std::vector<std::pair<std::string, std::string>> variables;
  variables.emplace_back("DRIFTWATCH_SOCKET", settings.socket_path);
  if (settings.interval_ms != 0) {
    variables.emplace_back("DRIFTWATCH_INTERVAL_MS", absl::StrCat(settings.interval_ms));
  }
  if (settings.sample_mean_bytes != 0) {
    variables.emplace_back("DRIFTWATCH_MODE", "sampled");
    variables.emplace_back("DRIFTWATCH_SAMPLE_BYTES", absl::StrCat(settings.sample_mean_bytes));
  }
  return variables;
}

bool IsShimVariable(std::string_view assignment) {
  const std::string_view name = assignment.substr(0, assignment.find('='));
  for (std::string_view known : kVariableNames) {
    if (name == known) return true;
  }
  return false;
}

absl::Status CheckSocketPath(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        fmt::format("the socket path must be absolute, got '{}'", path));
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(fmt::format("the socket path is longer than {} bytes: {}",
                                                  sizeof(sockaddr_un::sun_path) - 1, path));
  }
  return absl::OkStatus();
}

std::string RenderEnvironment(const EnvOptions& options) {
  const auto variables = ShimVariables(options.shim);
  std::string text;
  switch (options.format) {
    case EnvFormat::kShell:
      text =
          "# driftwatch: eval \"$(driftwatch env ...)\"; then start the service from this shell\n";
      // After the shim, what was preloaded already (${VAR:+...}: nothing when it was empty).
      text += fmt::format("export LD_PRELOAD={}\"${{LD_PRELOAD:+:$LD_PRELOAD}}\"\n",
                          ShellQuote(options.shim_path));
      for (const auto& [name, value] : variables) {
        text += fmt::format("export {}={}\n", name, ShellQuote(value));
      }
      break;
    case EnvFormat::kSystemd:
      text =
          "# driftwatch: a drop-in for the service (systemctl edit SERVICE), then restart it\n"
          "[Service]\n";
      text += fmt::format("Environment={}\n", SystemdAssignment("LD_PRELOAD", options.shim_path));
      for (const auto& [name, value] : variables) {
        text += fmt::format("Environment={}\n", SystemdAssignment(name, value));
      }
      break;
    case EnvFormat::kKubernetes:
      text =
          "# driftwatch: the container's env; mount the shim and the socket's directory (shared\n"
          "# with the collector's container) at these paths\n"
          "env:\n";
      text += fmt::format("  - name: LD_PRELOAD\n    value: {}\n", YamlQuote(options.shim_path));
      for (const auto& [name, value] : variables) {
        text += fmt::format("  - name: {}\n    value: {}\n", name, YamlQuote(value));
      }
      break;
  }
  return text;
}

}  // namespace dw::report
