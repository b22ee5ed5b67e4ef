// census_connection.h: the census socket: connect (checking who listens), send, back off.
//
// The socket is non-blocking and written with MSG_NOSIGNAL, so a slow or vanished collector
// never blocks the target or kills it with SIGPIPE. A collector is trusted only if the process
// listening runs as root, as this process's effective uid, or as the uid the shim started
// under (a worker that dropped privileges still reports to its root parent's collector): a
// socket made by another user in a shared directory gets nothing (docs/SECURITY.md).
//
// Descriptor numbers: on the census thread the socket lives in the thread's private table
// (os::TakePrivateFdTable) and the program never sees it. Where that table is shared (an older
// kernel, a seccomp filter, or the exit path), the socket is moved above the numbers a program
// expects to get back ("lowest free fd"), and its identity is checked before every use, since
// the program may close it and reuse the number.
//
// Thread-safety: none; one thread at a time uses a connection. Allocation: none.
// Safe inside a hook: no.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>

#include "preload/os.h"

namespace dw {

class CensusConnection {
 public:
  // `startup_uid`: besides root and the current effective uid, whose collector is trusted.
  void Configure(const char* socket_path, uint32_t interval_ms, uid_t startup_uid);

  bool connected() const { return fd_ >= 0; }
  // The socket's number in the program's table, or -1 (not connected, or in a private table).
  int fd_in_program_table() const { return fd_ >= 0 && !private_table_ ? fd_ : -1; }

  // Connects unless a backoff is running. True if a new connection was made: the caller sends
  // a Hello first.
  bool Connect();
  void Disconnect();
  // A fork child's copy: forgotten without a write; the copy of the descriptor is closed (if
  // it is still ours), so that the child does not hold the parent's connection open.
  void ForgetAfterFork();

  // Sends as much of `out` as the socket takes, waiting up to `deadline_ns` (CLOCK_MONOTONIC)
  // for room; sent bytes are consumed. False if the connection broke (it is then closed).
  bool Flush(os::PageBuffer& out, uint64_t deadline_ns);

 private:
  bool PeerIsTrusted(int fd) const;
  // The effective uid is read at each connection: a process that entered a user namespace
  // sees outside users as the overflow uid, its own included.
  bool TrustedUid(uid_t uid) const { return uid == 0 || uid == geteuid() || uid == startup_uid_; }
  // True if fd_ still refers to the socket we connected (same device and inode).
  bool StillOurSocket() const;
  void BackOff();

  char socket_path_[108] = {};
  uint32_t interval_ms_ = 1000;
  uid_t startup_uid_ = 0;

  int fd_ = -1;
  bool private_table_ = false;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  uint64_t next_connect_ns_ = 0;
  uint32_t backoff_ms_ = 0;
  mutable bool untrusted_reported_ = false;  // said once per process, not per attempt
};

}  // namespace dw
