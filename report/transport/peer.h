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

}  // namespace dw::report
