// launch_check.h: decides, before `driftwatch run` starts a command, whether the shim can load
// into it at all, so that a run which would measure nothing fails with the reason (exit 2)
// instead of ending "inconclusive".
//
// Refused: a statically linked executable (no PT_INTERP: the dynamic loader, which honours
// LD_PRELOAD, never runs; Go binaries built without cgo are named as such), a set-user-ID or
// set-group-ID executable that would change our ids, or one with file capabilities run by a
// non-root user (the kernel sets AT_SECURE and the loader ignores LD_PRELOAD), a script whose
// interpreter is one of those, a file that is not there. Noted: a dynamically linked Go binary (the
// Go heap is not malloc: only C allocations, fds, threads and timers are seen), and a sanitizer
// runtime in DT_NEEDED, which must come before the shim in LD_PRELOAD (see README "driftwatch run
// and sanitizers").
//
// Thread-safety: stateless, safe from any thread (libelf is used per call). Allocation: yes
// (collector code). Never runs inside a hook.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dw::report {

struct LaunchPlan {
  // Sanitizer runtimes the executable links (DT_NEEDED sonames such as "libasan.so.8"): they are
  // preloaded before the shim, as their runtimes demand to come first.
  std::vector<std::string> sanitizer_runtimes;
  // What the user should know before trusting the result, one sentence each.
  std::vector<std::string> notes;
};

// Checks `executable` (a path, as resolved from $PATH). Errors (FailedPrecondition or NotFound)
// carry the reason in words.
absl::StatusOr<LaunchPlan> CheckLaunch(const std::string& executable);

// True for a sanitizer runtime's file or soname: lib{a,t,ub,l,hwa}san.so*, with or without a
// directory.
bool IsSanitizerRuntime(std::string_view library);

}  // namespace dw::report
