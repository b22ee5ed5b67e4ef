#include "report/transport/collector.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "report/transport/process_tree.h"

namespace dw::report {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

// Bytes read from one connection per poll round, so one chatty process cannot starve the others.
constexpr size_t kReadBudgetPerRound = 1 << 20;
// How long the listener is left out of poll() when not even the reserve fd could take a peer.
constexpr auto kListenerPause = std::chrono::milliseconds(100);

PeerInfo PeerCredentials(int fd) {
  ucred credentials{};
  socklen_t size = sizeof(credentials);
  PeerInfo peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) == 0) {
    peer.pid = credentials.pid;
    peer.uid = credentials.uid;
    peer.gid = credentials.gid;
  } else {
    peer.uid = static_cast<uid_t>(-1);  // unknown: never our uid, so the admission check decides
  }
  return peer;
}

// Adds the peer to `list` unless its pid is listed already or the list is full; reads its exe
// only then.
void ListPeer(std::vector<PeerInfo>& list, PeerInfo peer) {
  if (list.size() >= Collector::kMaxListedPeers) return;
  for (const PeerInfo& listed : list) {
    if (listed.pid == peer.pid) return;
  }
  peer.exe = ProcessExe(peer.pid);
  list.push_back(std::move(peer));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Collector>> Collector::Create() {
  std::unique_ptr<Collector> collector(new Collector());
  std::string base = "/tmp";
  // sun_path holds 107 characters; keep room for "/driftwatch-XXXXXX/census.sock".
  if (const char* tmpdir = std::getenv("TMPDIR");
      tmpdir != nullptr && tmpdir[0] == '/' && std::strlen(tmpdir) < 64) {
    base = tmpdir;
  }
  std::string dir_template = base + "/driftwatch-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) {  // mkdtemp creates the directory with mode 0700
    return absl::InternalError(
        absl::StrCat("cannot create a socket directory under ", base, ": ", ErrnoText()));
  }
  collector->dir_ = dir_template;
  collector->socket_path_ = collector->dir_ + "/census.sock";

  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (collector->socket_path_.size() >= sizeof(address.sun_path)) {
    return absl::InternalError(absl::StrCat("socket path too long: ", collector->socket_path_));
  }
  std::memcpy(address.sun_path, collector->socket_path_.c_str(),
              collector->socket_path_.size() + 1);
  // CLOEXEC: the traced command must not inherit the listening socket.
  collector->listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (collector->listen_fd_ < 0) {
    return absl::InternalError(absl::StrCat("socket: ", ErrnoText()));
  }
  if (bind(collector->listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) !=
      0) {
    return absl::InternalError(
        absl::StrCat("cannot bind ", collector->socket_path_, ": ", ErrnoText()));
  }
  // Children that switch uid must reach and connect to the socket; the directory stays unlistable
  // and every peer's credentials are checked on accept (Admit).
  if (chmod(collector->dir_.c_str(), 0711) != 0 ||
      chmod(collector->socket_path_.c_str(), 0777) != 0) {
    return absl::InternalError(absl::StrCat("cannot open ", collector->socket_path_,
                                            " to the run's children: ", ErrnoText()));
  }
  if (listen(collector->listen_fd_, SOMAXCONN) != 0) {
    return absl::InternalError(absl::StrCat("listen: ", ErrnoText()));
  }
  collector->reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return collector;
}

std::unique_ptr<Collector> Collector::CreateOffline() {
  return std::unique_ptr<Collector>(new Collector());
}

Collector::~Collector() {
  for (auto& connection : connections_) {
    if (connection->fd >= 0) close(connection->fd);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
  if (!socket_path_.empty()) unlink(socket_path_.c_str());
  if (!dir_.empty()) rmdir(dir_.c_str());
}

size_t Collector::open_connections() const {
  size_t open = 0;
  for (const auto& connection : connections_) open += connection->fd >= 0 ? 1 : 0;
  return open;
}

absl::StatusOr<bool> Collector::PollOnce(int timeout_ms, std::span<pollfd> extra) {
  std::vector<pollfd> fds(extra.begin(), extra.end());
  // A negative fd is skipped by poll(): the listener rests while paused.
  const bool paused = Clock::now() < listener_paused_until_;
  fds.push_back({.fd = paused ? -1 : listen_fd_, .events = POLLIN, .revents = 0});
  std::vector<Connection*> polled;
  for (auto& connection : connections_) {
    if (connection->fd < 0) continue;
    fds.push_back({.fd = connection->fd, .events = POLLIN, .revents = 0});
    polled.push_back(connection.get());
  }
  int ready = poll(fds.data(), fds.size(), timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return false;
    return absl::InternalError(absl::StrCat("poll: ", ErrnoText()));
  }
  for (size_t i = 0; i < extra.size(); ++i) extra[i].revents = fds[i].revents;
  bool activity = false;
  for (size_t i = 0; i < polled.size(); ++i) {
    if (fds[extra.size() + 1 + i].revents != 0) activity |= ReadFrom(*polled[i]);
  }
  if (fds[extra.size()].revents != 0) {
    const size_t before = connections_.size();
    AcceptAll();
    activity |= connections_.size() != before;
  }
  return activity;
}

void Collector::AcceptAll() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) TurnAwayOne();
      return;  // EAGAIN: nothing pending; other errors: try again next round
    }
    PeerInfo peer = PeerCredentials(fd);
    if (!Admit(fd, peer)) continue;
    auto connection = NewConnection();
    connection->fd = fd;
    connection->record.peer = peer;
    connection->id = static_cast<uint32_t>(connections_.size());
    if (tap_ != nullptr) tap_->OnOpen(connection->id);
    // Read right away: a short-lived process may already have written everything and closed.
    ReadFrom(*connection);
    connections_.push_back(std::move(connection));
  }
}

bool Collector::Admit(int fd, PeerInfo& peer) {
  if (peer.uid == geteuid() || (admission_ && admission_(peer))) return true;
  close(fd);
  ListPeer(refused_, peer);
  return false;
}

void Collector::TurnAwayOne() {
  if (reserve_fd_ >= 0) close(reserve_fd_);
  const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    PeerInfo peer = PeerCredentials(fd);
    close(fd);
    ++turned_away_connections_;
    ListPeer(turned_away_, peer);
  }
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || reserve_fd_ < 0) listener_paused_until_ = Clock::now() + kListenerPause;
}

bool Collector::ReadFrom(Connection& connection) {
  char buffer[64 * 1024];
  bool activity = false;
  size_t budget = kReadBudgetPerRound;
  while (connection.fd >= 0 && budget > 0) {
    const ssize_t n = read(connection.fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      const std::string error = absl::StrCat("read: ", ErrnoText());
      if (tap_ != nullptr) tap_->OnClose(connection.id, error);
      EndOfStream(connection, error);
      return true;
    }
    activity = true;
    if (n == 0) {
      if (tap_ != nullptr) tap_->OnClose(connection.id, "");
      EndOfStream(connection, "");
      break;
    }
    budget -= std::min<size_t>(budget, static_cast<size_t>(n));
    // The tap sees the bytes before decoding, so a recording keeps even the chunk that broke it.
    if (tap_ != nullptr) tap_->OnBytes(connection.id, std::string_view(buffer, n));
    Consume(connection, std::string_view(buffer, n));
  }
  return activity;
}

void Collector::Consume(Connection& connection, std::string_view bytes) {
  if (!connection.open) return;
  absl::Status status = connection.decoder.Feed(bytes);
  Drain(connection);
  if (!status.ok()) {
    connection.record.stream_error = std::string(status.message());
    Close(connection);
  }
}

void Collector::EndOfStream(Connection& connection, std::string_view read_error) {
  if (!connection.open) return;
  if (!read_error.empty()) {
    connection.record.stream_error = std::string(read_error);
  } else {
    connection.record.eof = true;
    if (absl::Status status = connection.decoder.Finish(); !status.ok()) {
      connection.record.stream_error = std::string(status.message());
    }
  }
  Close(connection);
}

std::unique_ptr<Collector::Connection> Collector::NewConnection() {
  auto connection = std::make_unique<Connection>();
  // Each census carries only the sites it changed, so one costs O(changed sites) here; the
  // latest values of all sites are handed over once, when the connection ends (Close).
  connection->decoder.set_changes_only(true);
  return connection;
}

uint32_t Collector::OpenOffline() {
  auto connection = NewConnection();
  connection->id = static_cast<uint32_t>(connections_.size());
  connections_.push_back(std::move(connection));
  return connections_.back()->id;
}

void Collector::FeedOffline(uint32_t connection, std::string_view bytes) {
  Consume(*connections_.at(connection), bytes);
}

void Collector::EndOffline(uint32_t connection, std::string_view read_error) {
  EndOfStream(*connections_.at(connection), read_error);
}

void Collector::Drain(Connection& connection) {
  ConnectionRecord& record = connection.record;
  if (!record.hello.has_value() && connection.decoder.hello().has_value()) {
    record.hello = connection.decoder.hello();
  }
  for (Census& census : connection.decoder.TakeCensuses()) {
    record.series.Append(census);
    ++record.census_count;
    record.latest = std::move(census);
    record.latest->counters = {};  // the changes only: all sites' values come at Close
  }
  record.sequence_gaps = connection.decoder.sequence_gaps();
  record.saw_final = connection.decoder.saw_final();
}

void Collector::Close(Connection& connection) {
  if (!connection.open) return;
  connection.open = false;
  if (connection.fd >= 0) close(connection.fd);
  connection.fd = -1;
  // Moved, not copied: with 100k+ stacks each copy is tens of megabytes.
  connection.record.sites = connection.decoder.TakeSites();
  if (connection.record.latest.has_value()) {
    connection.record.latest->counters = connection.decoder.TakeCounters();
  }
}

std::vector<ConnectionRecord> Collector::Finish() {
  std::vector<ConnectionRecord> records;
  records.reserve(connections_.size());
  for (auto& connection : connections_) {
    if (connection->open) {
      // Still open: the peer outlived the run (e.g. a daemonised grandchild). What it sent is
      // kept; an incomplete census is noted, not fatal.
      if (absl::Status status = connection->decoder.Finish();
          !status.ok() && connection->record.stream_error.empty()) {
        connection->record.stream_error = absl::StrCat("connection still open: ", status.message());
      }
      Close(*connection);
    }
    records.push_back(std::move(connection->record));
  }
  connections_.clear();
  return records;
}

}  // namespace dw::report
