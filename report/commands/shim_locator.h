// shim_locator.h: finds libdriftwatch.so for `driftwatch run`.
//
// Search order: $DRIFTWATCH_SHIM (when set it must exist; no silent fallback), then
// <exe_dir>/../lib/libdriftwatch.so (build tree), then <exe_dir>/<DRIFTWATCH_SHIM_RELATIVE_DIR>/
// libdriftwatch.so (installed tree; the relative path from bindir to libdir/driftwatch comes from
// CMake).
//
// Thread-safety: thread-compatible (reads the environment). Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace dw::report {

inline constexpr char kShimFileName[] = "libdriftwatch.so";
inline constexpr char kShimEnvVar[] = "DRIFTWATCH_SHIM";

// The pure search: `env_value` is $DRIFTWATCH_SHIM (nullopt when unset), `exe_path` the absolute
// path of the running driftwatch binary. Returns an absolute path to an existing file.
absl::StatusOr<std::string> LocateShimFrom(const std::optional<std::string>& env_value,
                                           const std::string& exe_path);

// LocateShimFrom() with the real environment and /proc/self/exe.
absl::StatusOr<std::string> LocateShim();

}  // namespace dw::report
