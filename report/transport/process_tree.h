// process_tree.h: what `driftwatch run` reads in /proc about the processes it started: who is
// whose parent, which uid and executable a process has, and whether it carries the shim.
//
// Used to admit census connections from children that switched to another uid (their pid must
// descend from driftwatch, which is a child subreaper during the run, so daemonising double-forks
// stay below it) and to list processes of the run that never sent a census. See docs/SECURITY.md.
//
// Thread-safety: stateless functions, safe from any thread. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "report/transport/peer.h"

namespace dw::report {

// The fields of /proc/<pid>/stat that the run needs.
struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';          // 'Z' for a zombie
  uint64_t start_ticks = 0;  // field 22: clock ticks after boot when the process started
};

// Parses /proc/<pid>/stat; nullopt when the process is gone (or was reaped).
std::optional<ProcStat> ReadProcStat(pid_t pid);

// True when `pid` is `ancestor` or one of its descendants now, by walking the ppid chain in /proc.
// False when a process on the chain is gone.
bool IsDescendantOf(pid_t pid, pid_t ancestor);

// Every live process (zombies included) whose ppid chain reaches `ancestor`, `ancestor` excluded.
std::vector<ProcStat> ListDescendants(pid_t ancestor);

// The effective uid from /proc/<pid>/status; nullopt when the process is gone.
std::optional<uid_t> ProcessEffectiveUid(pid_t pid);

// readlink /proc/<pid>/exe, else "[comm]" from /proc/<pid>/stat, else "?".
std::string ProcessExe(pid_t pid);

// /proc/<pid>/comm and the basename of argv[0] from /proc/<pid>/cmdline; each empty when it
// cannot be read (the process is gone, or it cleared its argv).
ProcessNames ReadProcessNames(pid_t pid);

// True when the process runs with the shim of this run: its environment holds exactly
// `socket_variable` (e.g. "DRIFTWATCH_SOCKET=/tmp/driftwatch-x/census.sock") or `shim_path` is
// mapped in it. False when neither can be read (another user's process, unless we are root).
bool CarriesShim(pid_t pid, const std::string& socket_variable, const std::string& shim_path);

// Seconds since boot (/proc/uptime) and the kernel's clock ticks per second, to age a process by
// its start_ticks.
double UptimeSeconds();
double ProcessAgeSeconds(const ProcStat& stat);

}  // namespace dw::report
