// env_command.h: `driftwatch env` as a library: the environment that puts a process under the
// shim, reporting to a collector's socket, written for a shell, a systemd unit or a Kubernetes
// container. `driftwatch collect` cannot set the environment of services it does not start, so
// it prints what to give them; `driftwatch run` sets the same variables (ShimVariables) itself.
//
// Thread-safety: stateless functions. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace dw::report {

// Sampled mode's default mean bytes between heap samples, as in tcmalloc and Go (and the shim's
// own default, preload/options.h).
inline constexpr uint32_t kDefaultSampleBytes = 512 * 1024;

// The shim's settings, LD_PRELOAD aside.
struct ShimSettings {
  std::string socket_path;         // DRIFTWATCH_SOCKET
  uint32_t interval_ms = 0;        // DRIFTWATCH_INTERVAL_MS; 0: the shim's default (1 s)
  uint32_t sample_mean_bytes = 0;  // DRIFTWATCH_MODE=sampled and DRIFTWATCH_SAMPLE_BYTES; 0: exact
};

// The DRIFTWATCH_* variables for `settings`, in a fixed order. Exact mode sets no
// DRIFTWATCH_MODE: it is the shim's default.
std::vector<std::pair<std::string, std::string>> ShimVariables(const ShimSettings& settings);

// True for "NAME=value" (or "NAME") where NAME is one of the variables ShimVariables may set:
// an inherited value would contradict the caller's settings.
bool IsShimVariable(std::string_view assignment);

enum class EnvFormat { kShell, kSystemd, kKubernetes };

struct EnvOptions {
  ShimSettings shim{.socket_path = "", .interval_ms = 0, .sample_mean_bytes = kDefaultSampleBytes};
  std::string shim_path;  // absolute path of libdriftwatch.so as the process will see it
  EnvFormat format = EnvFormat::kShell;
};

// The socket path the shim can use: absolute (a relative one would be resolved in each
// service's working directory) and short enough for sun_path.
absl::Status CheckSocketPath(std::string_view path);

// The text `driftwatch env` prints:
//   shell:      export lines (LD_PRELOAD keeps what was preloaded already, after the shim);
//   systemd:    a [Service] drop-in of Environment= lines;
//   kubernetes: an env: list for a container spec.
std::string RenderEnvironment(const EnvOptions& options);

}  // namespace dw::report
