#include "report/commands/shim_locator.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#ifndef DRIFTWATCH_SHIM_RELATIVE_DIR
#error "DRIFTWATCH_SHIM_RELATIVE_DIR must be defined by the build (bindir -> libdir/driftwatch)"
#endif

namespace dw::report {
namespace {

bool IsRegularFile(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

}  // namespace

absl::StatusOr<std::string> LocateShimFrom(const std::optional<std::string>& env_value,
                                           const std::string& exe_path) {
  namespace fs = std::filesystem;
  if (env_value.has_value()) {
    // An explicit choice that does not exist is an error: falling back would trace with a shim
    // the user did not ask for.
    std::error_code error;
    const fs::path path = fs::absolute(*env_value, error);
    if (env_value->empty() || error || !IsRegularFile(path)) {
      return absl::NotFoundError(
          absl::StrCat(kShimEnvVar, "=", *env_value, " does not name an existing file"));
    }
    return path.lexically_normal().string();
  }
  const fs::path exe_dir = fs::path(exe_path).parent_path();
  const std::vector<fs::path> candidates = {
      exe_dir / ".." / "lib" / kShimFileName,
      exe_dir / DRIFTWATCH_SHIM_RELATIVE_DIR / kShimFileName,
  };
  std::vector<std::string> tried;
  for (const fs::path& candidate : candidates) {
    const fs::path normal = candidate.lexically_normal();
    if (IsRegularFile(normal)) return normal.string();
    tried.push_back(normal.string());
  }
  return absl::NotFoundError(absl::StrCat("cannot find the shim ", kShimFileName, " (looked at ",
                                          absl::StrJoin(tried, ", "), "); set ", kShimEnvVar,
                                          " to its path"));
}

absl::StatusOr<std::string> LocateShim() {
  std::optional<std::string> env_value;
  if (const char* value = std::getenv(kShimEnvVar); value != nullptr) env_value = value;
  std::error_code error;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error && !env_value.has_value()) {
    return absl::InternalError(absl::StrCat("cannot read /proc/self/exe: ", error.message()));
  }
  return LocateShimFrom(env_value, exe.string());
}

}  // namespace dw::report
