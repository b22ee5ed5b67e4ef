#include "preload/census_connection.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "preload/raw_log.h"

namespace dw {
namespace {

constexpr uint32_t kMaxBackoffMs = 5000;

}  // namespace

void CensusConnection::Configure(const char* socket_path, uint32_t interval_ms, uid_t startup_uid) {
  strncpy(socket_path_, socket_path, sizeof(socket_path_) - 1);
  interval_ms_ = interval_ms;
  startup_uid_ = startup_uid;
}

bool CensusConnection::Connect() {
  if (fd_ >= 0) return false;
  const uint64_t now = os::MonotonicNs();
  if (now < next_connect_ns_) return false;
  int fd = os::ConnectUnixSocket(socket_path_);
  const bool private_table = os::HasPrivateFdTable();
  if (fd >= 0 && !private_table) {
    const int floor = os::HighFdFloor();
    // Staying at a low number would take it from the program: give up instead.
    fd = floor > 2 ? os::MoveFdAtOrAbove(fd, floor) : (os::Close(fd), -1);
  }
  struct stat status;
  if (fd >= 0 && (!os::Fstat(fd, &status) || !PeerIsTrusted(fd))) {
    os::Close(fd);
    fd = -1;
  }
  if (fd < 0) {
    BackOff();
    return false;
  }
  fd_ = fd;
  private_table_ = private_table;
  device_ = status.st_dev;
  inode_ = status.st_ino;
  backoff_ms_ = 0;
  return true;
}

bool CensusConnection::PeerIsTrusted(int fd) const {
  pid_t pid = 0;
  uid_t uid = 0;
  struct stat file;
  // The listener's credentials are what count; the socket file's owner is checked too, so a
  // socket planted by another user is refused even before anyone listens behind it.
  const bool trusted = os::PeerCredentials(fd, &pid, &uid) && TrustedUid(uid) &&
                       stat(socket_path_, &file) == 0 && TrustedUid(file.st_uid);
  if (!trusted && !untrusted_reported_) {
    untrusted_reported_ = true;
    DW_LOG(kError, "not reporting to " << socket_path_ << ": its collector (pid " << pid << ", uid "
                                       << uid << ") is neither root nor this process's user");
  }
  return trusted;
}

void CensusConnection::BackOff() {
  // Exponential: a missing collector costs a connect attempt every few seconds at most.
  backoff_ms_ = backoff_ms_ == 0 ? interval_ms_ : backoff_ms_ * 2;
  if (backoff_ms_ > kMaxBackoffMs) backoff_ms_ = kMaxBackoffMs;
  next_connect_ns_ = os::MonotonicNs() + uint64_t{backoff_ms_} * 1000000u;
}

bool CensusConnection::StillOurSocket() const {
  if (fd_ < 0) return false;
  if (private_table_) return true;  // the program cannot reach it
  struct stat status;
  return os::Fstat(fd_, &status) && status.st_dev == device_ && status.st_ino == inode_;
}

void CensusConnection::Disconnect() {
  // Close the number only if it is still our socket: the program may have closed it
  // (closefrom, close_range) and got the same number back for a file of its own.
  if (StillOurSocket()) os::Close(fd_);
  fd_ = -1;
  next_connect_ns_ = os::MonotonicNs() + uint64_t{interval_ms_} * 1000000u;
}

void CensusConnection::ForgetAfterFork() {
  // A private table is not inherited by fork; a shared one is, with our socket in it.
  if (!private_table_ && StillOurSocket()) os::Close(fd_);
  fd_ = -1;
  next_connect_ns_ = 0;
  backoff_ms_ = 0;
}

bool CensusConnection::Flush(os::PageBuffer& out, uint64_t deadline_ns) {
  if (out.size() > 0 && !StillOurSocket()) {
    DW_LOG(kWarning, "the census socket was closed or replaced by the program; reconnecting");
    fd_ = -1;  // not ours any more: never write to it or close it
    Disconnect();
    return false;
  }
  // What was sent is dropped from the buffer once, on the way out: dropping it after every
  // send moved the rest of a census of megabytes to the front each time the socket took a
  // buffer's worth (a third of the census thread's CPU with 150k changed sites).
  size_t done = 0;
  while (done < out.size()) {
    ssize_t sent = os::SendNoSignal(fd_, out.data() + done, out.size() - done);
    if (sent > 0) {
      done += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const uint64_t now = os::MonotonicNs();
      if (now >= deadline_ns) {
        out.Consume(done);
        return true;  // still connected; the rest goes later
      }
      os::WaitWritable(fd_, static_cast<int>((deadline_ns - now) / 1000000u) + 1);
      continue;
    }
    DW_LOG(kInfo, "collector connection lost (errno " << errno << ")");
    out.Consume(done);
    Disconnect();
    return false;
  }
  out.Consume(done);
  return true;
}

}  // namespace dw
