// peer.h: who is at the other end of a census connection, as the kernel says (SO_PEERCRED).
//
// Kept apart from collector.h so that the model (report/model/run_result.h: refused peers) can
// name a peer without the collector's poll loop.
//
// Thread-safety: plain data. Allocation: yes (the exe string). Never runs inside a hook.
#pragma once

#include <sys/types.h>

#include <string>

namespace dw::report {

// The credentials of a connecting peer (SO_PEERCRED: as they were at connect time) and its
// executable when it was refused or turned away.
struct PeerInfo {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string exe;  // filled for refused and turned-away peers only
};

// The names of a process as /proc gives them: /proc/PID/comm (what ps and top show; the kernel
// keeps 15 bytes of it) and the basename of argv[0]. Empty when they could not be read (the
// process was gone). A symlinked binary (redis-server -> redis-check-rdb) has its exe at the
// target, but these keep the name it was started by.
struct ProcessNames {
  std::string comm;
  std::string argv0;
};

}  // namespace dw::report
