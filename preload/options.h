// options.h: the shim's settings, read once from the environment at start-up.
//
// Bad values are reported through raw_log and replaced by the default: a typo in a variable
// must never change what the target does or stop it from starting.
//
// Thread-safety: Load() runs once, single-threaded, in the shim's constructor; afterwards the
// options are read-only. Allocation: none (getenv only). Safe inside a hook: reading, yes.
#pragma once

#include <cstdint>

namespace dw {

struct Options {
  static constexpr uint32_t kMaxSocketPath = 107;  // sun_path minus the NUL

  char socket_path[kMaxSocketPath + 1] = {};  // DRIFTWATCH_SOCKET; empty: stay dormant
  uint32_t interval_ms = 1000;                // DRIFTWATCH_INTERVAL_MS
  uint32_t depth = 16;                        // DRIFTWATCH_DEPTH, frames per stack
  // DRIFTWATCH_MAX_SITES, distinct stacks. 2^20: recursive code reaches 300k stacks in exact
  // mode; the stack index reserves 8 bytes of address space per possible site (8 MiB), and
  // only what is used becomes resident.
  uint32_t max_sites = 1u << 20;
  uint32_t log_level = 1;  // DRIFTWATCH_LOG: 0 errors, 1 warnings, 2 info
  // DRIFTWATCH_MODE=exact|sampled; in sampled mode, the mean bytes between heap samples
  // (DRIFTWATCH_SAMPLE_BYTES). 0 means exact.
  uint32_t sample_mean_bytes = 0;
  static constexpr uint32_t kDefaultSampleBytes = 512 * 1024;

  bool enabled() const { return socket_path[0] != '\0'; }
};

// Reads every DRIFTWATCH_* variable into `options`.
void LoadOptions(Options& options);

// Parses an unsigned decimal in [min, max]; false for anything else. Exposed for tests.
bool ParseBoundedUint(const char* text, uint32_t min, uint32_t max, uint32_t* value);

}  // namespace dw
