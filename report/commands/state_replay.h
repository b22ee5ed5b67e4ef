// state_replay.h: `driftwatch report` on what `collect --state DIR` kept: one segment, a process's
// directory (all its segments in order, replayed as one stream), or all of DIR, optionally
// within a time window (--since, --until).
//
// Segments are chained by content, not by name: a segment whose key frame carries the same Hello
// as a stream replayed so far and the sequence of that stream's last census continues it, and
// its key frame is skipped (the census it recreates was already counted). A segment that
// continues nothing (the first one replayed, or one after a segment the caps deleted) starts a
// stream from its key frame; when an earlier stream of the same process exists, a warning says
// censuses are missing between them and the process appears twice.
//
// A window keeps the censuses taken (the shim's CLOCK_REALTIME) between since and until: the
// stream is read from the last segment that began before since; the first census in the window
// is replaced by a key frame of the state as of that census (so the window's analysis starts
// from it), and the stream stops before the first census after until.
//
// Thread-safety: not thread-safe; one replay runs on one thread. Allocation: yes (collector
// code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "report/analysis/process_analysis.h"
#include "report/commands/recording.h"

namespace dw::report {

// Census times to keep, in CLOCK_REALTIME nanoseconds; unset: unbounded.
struct ReplayWindow {
  std::optional<uint64_t> since_ns;
  std::optional<uint64_t> until_ns;
  bool empty() const { return !since_ns.has_value() && !until_ns.has_value(); }
};

// TIME for --since and --until: RFC 3339 ("2026-12-02T02:00:00Z", "2026-12-02T03:00:00+01:00",
// fractions of a second allowed, seconds optional, a space for the T), or relative to `now_ns`:
// "now", "-2h", "-90m", "-1d12h", "-30s" (units d, h, m, s). Errors say what was expected.
absl::StatusOr<uint64_t> ParseReplayTime(std::string_view text, uint64_t now_ns);

// Replays `path`: a recording (plain or zstd), a process directory of `collect --state`, or its
// DIR, within `window`. A single recording without a window is ReplayRecording exactly. Errors
// (bad file, no segments, no census in the window) name the file and the offset.
absl::StatusOr<ReplayedRun> ReplayPath(const std::string& path, const ReplayWindow& window,
                                       const AnalysisOptions& analysis);

}  // namespace dw::report
