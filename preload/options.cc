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
