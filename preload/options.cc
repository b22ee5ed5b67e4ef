#include "preload/options.h"

#include <cstdlib>
#include <cstring>

#include "preload/raw_log.h"
#include "preload/wire_format.h"

namespace dw {
namespace {

void LoadUint(const char* name, uint32_t min, uint32_t max, uint32_t* value) {
  const char* text = getenv(name);
  if (text == nullptr || *text == '\0') return;
  if (!ParseBoundedUint(text, min, max, value)) {
    DW_LOG(kError, name << "='" << text << "' is not a whole number from " << min << " to " << max
                        << "; using " << *value);
  }
}

// DRIFTWATCH_SAMPLE_BYTES alone does not turn sampling on: a mean left in the environment of an
// exact run must not change what that run measures.
void LoadMode(Options& options) {
  const char* mode = getenv("DRIFTWATCH_MODE");
  if (mode == nullptr || *mode == '\0' || strcmp(mode, "exact") == 0) return;
  if (strcmp(mode, "sampled") != 0) {
    DW_LOG(kError, "DRIFTWATCH_MODE='" << mode << "' is neither exact nor sampled; using exact");
    return;
  }
  options.sample_mean_bytes = Options::kDefaultSampleBytes;
  // 1 byte samples every block (a test of the sampled path); 1 GiB is one sample per GiB.
  LoadUint("DRIFTWATCH_SAMPLE_BYTES", 1, 1u << 30, &options.sample_mean_bytes);
}

}  // namespace

bool ParseBoundedUint(const char* text, uint32_t min, uint32_t max, uint32_t* value) {
  if (text == nullptr || *text == '\0') return false;
  uint64_t parsed = 0;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return false;
    parsed = parsed * 10 + static_cast<uint64_t>(*c - '0');
    if (parsed > max) return false;
  }
  if (parsed < min) return false;
  *value = static_cast<uint32_t>(parsed);
  return true;
}

void LoadOptions(Options& options) {
  LoadUint("DRIFTWATCH_LOG", 0, 2, &options.log_level);
  SetLogLevel(static_cast<LogLevel>(options.log_level));
  LoadUint("DRIFTWATCH_INTERVAL_MS", 10, 3600 * 1000, &options.interval_ms);
  LoadUint("DRIFTWATCH_DEPTH", 1, wire::kMaxDepth, &options.depth);
  LoadUint("DRIFTWATCH_MAX_SITES", 1024, 1u << 24, &options.max_sites);
  LoadMode(options);
  const char* socket_path = getenv("DRIFTWATCH_SOCKET");
  if (socket_path != nullptr && *socket_path != '\0') {
    if (strlen(socket_path) > Options::kMaxSocketPath) {
      DW_LOG(kError, "DRIFTWATCH_SOCKET is longer than " << Options::kMaxSocketPath
                                                         << " bytes; staying dormant");
    } else {
      strcpy(options.socket_path, socket_path);
    }
  }
}

}  // namespace dw
