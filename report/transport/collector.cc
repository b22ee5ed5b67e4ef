#include "report/transport/collector.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
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

  if (absl::Status status = collector->Bind(0777); !status.ok()) return status;
  // Children that switch uid must reach and connect to the socket; the directory stays unlistable
  // and every peer's credentials are checked on accept (Admit).
  if (chmod(collector->dir_.c_str(), 0711) != 0) {
    return absl::InternalError(absl::StrCat("cannot open ", collector->socket_path_,
                                            " to the run's children: ", ErrnoText()));
  }
  return collector;
}

absl::Status Collector::Bind(mode_t mode) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket path too long (over ", sizeof(address.sun_path) - 1, " bytes): ", socket_path_));
  }
  std::memcpy(address.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  // CLOEXEC: the traced command must not inherit the listening socket.
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", ErrnoText()));
  if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::InternalError(absl::StrCat("cannot bind ", socket_path_, ": ", ErrnoText()));
  }
  struct stat created {};
  if (chmod(socket_path_.c_str(), mode) != 0 || stat(socket_path_.c_str(), &created) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot set the mode of ", socket_path_, ": ", ErrnoText()));
  }
  socket_dev_ = created.st_dev;
  socket_ino_ = created.st_ino;
  if (listen(listen_fd_, SOMAXCONN) != 0) {
    return absl::InternalError(absl::StrCat("listen: ", ErrnoText()));
  }
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return absl::OkStatus();
}

namespace {

// A file at `path` before a collector binds there: nothing, a socket nobody listens on (left by a
// collector that died: removed), or an error (a live collector, or not a socket).
absl::Status ClearStaleSocket(const std::string& path) {
  struct stat existing {};
  if (lstat(path.c_str(), &existing) != 0) {
    return errno == ENOENT
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("cannot stat ", path, ": ", ErrnoText()));
  }
  if (!S_ISSOCK(existing.st_mode)) {
    return absl::AlreadyExistsError(absl::StrCat(path, " exists and is not a socket"));
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(),
              std::min(path.size() + 1, sizeof(address.sun_path) - 1));
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool live = probe >= 0 && connect(probe, reinterpret_cast<const sockaddr*>(&address),
                                          sizeof(address)) == 0;
  if (probe >= 0) close(probe);
  if (live) {
    return absl::AlreadyExistsError(absl::StrCat("another collector is listening on ", path));
  }
  if (unlink(path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot remove the stale socket ", path, ": ", ErrnoText()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Collector>> Collector::Listen(const std::string& path, mode_t mode) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("the socket path must be absolute, got '", path, "'"));
  }
  std::unique_ptr<Collector> collector(new Collector());
  collector->socket_path_ = path;
  if (path.size() < sizeof(sockaddr_un::sun_path)) {
    if (absl::Status status = ClearStaleSocket(path); !status.ok()) return status;
  }
  // On failure the destructor leaves the path alone: the file there (if any) is not the one made
  // here.
  if (absl::Status status = collector->Bind(mode); !status.ok()) return status;
  return collector;
}

std::unique_ptr<Collector> Collector::CreateOffline() {
  auto collector = std::unique_ptr<Collector>(new Collector());
  collector->offline_ = true;
  return collector;
}

Collector::~Collector() {
  for (auto& connection : connections_) {
    if (connection->fd >= 0) close(connection->fd);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
  // Only the socket made here: a collector started since on the same path owns the file there.
  struct stat now {};
  if (!socket_path_.empty() && stat(socket_path_.c_str(), &now) == 0 && now.st_dev == socket_dev_ &&
      now.st_ino == socket_ino_) {
    unlink(socket_path_.c_str());
  }
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
    // Now, while the peer surely lives: a short-lived process may be gone by its first census.
    connection->record.names = ReadProcessNames(peer.pid);
    connection->id = next_id_++;
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
  // A clean end without the final census, from a shim that names its image: the census thread
  // may have stepped aside, and come back on a new connection.
  const ConnectionRecord& record = connection.record;
  if (read_error.empty() && record.stream_error.empty() && !record.saw_final &&
      record.hello.has_value() && record.hello->image.has_value()) {
    connection.parked = true;
    connection.parked_at = Clock::now();
  }
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
  connection->id = next_id_++;
  connections_.push_back(std::move(connection));
  return connections_.back()->id;
}

Collector::Connection* Collector::FindConnection(uint32_t id) const {
  // Ids rise in accept order, so the connections are sorted by id.
  auto it = std::lower_bound(connections_.begin(), connections_.end(), id,
                             [](const std::unique_ptr<Connection>& connection, uint32_t key) {
                               return connection->id < key;
                             });
  return it != connections_.end() && (*it)->id == id ? it->get() : nullptr;
}

void Collector::FeedOffline(uint32_t connection, std::string_view bytes) {
  if (Connection* found = FindConnection(connection); found != nullptr) Consume(*found, bytes);
}

void Collector::EndOffline(uint32_t connection, std::string_view read_error) {
  if (Connection* found = FindConnection(connection); found != nullptr) {
    EndOfStream(*found, read_error);
  }
}

std::vector<Collector::Ended> Collector::TakeEnded() {
  UnparkExcess();
  const Clock::time_point now = Clock::now();
  std::vector<Ended> ended;
  std::erase_if(connections_, [this, now, &ended](std::unique_ptr<Connection>& connection) {
    if (connection->adopted) return true;
    if (connection->open) return false;
    if (connection->parked) {
      if (!ParkingOver(*connection, now)) return false;
      connection->parked = false;
    }
    ended.push_back({.id = connection->id, .record = std::move(connection->record)});
    return true;
  });
  return ended;
}

std::vector<uint32_t> Collector::OpenIds() const {
  std::vector<uint32_t> ids;
  for (const auto& connection : connections_) {
    if (connection->open) ids.push_back(connection->id);
  }
  return ids;
}

const ConnectionRecord* Collector::Peek(uint32_t connection) const {
  const Connection* found = FindConnection(connection);
  return found != nullptr && found->open ? &found->record : nullptr;
}

std::optional<ConnectionRecord> Collector::Snapshot(uint32_t connection) const {
  const Connection* found = FindConnection(connection);
  if (found == nullptr || !found->open) return std::nullopt;
  ConnectionRecord copy = found->record;
  copy.sites = found->decoder.sites();
  if (copy.latest.has_value()) copy.latest->counters = found->decoder.counters();
  return copy;
}

void Collector::Drain(Connection& connection) {
  ConnectionRecord& record = connection.record;
  if (!record.hello.has_value() && connection.decoder.hello_complete()) {
    record.hello = connection.decoder.hello();
    JoinImage(connection);
  }
  for (Census& census : connection.decoder.TakeCensuses()) {
    record.series.Append(census);
    ++record.census_count;
    record.latest = std::move(census);
    record.latest->counters = {};  // the changes only: all sites' values come at Close
  }
  record.sequence_gaps = connection.gaps_before + connection.decoder.sequence_gaps();
  record.saw_final = connection.decoder.saw_final();
}

void Collector::JoinImage(Connection& connection) {
  const HelloInfo& hello = *connection.record.hello;
  for (auto& other : connections_) {
    Connection& parked = *other;
    if (!parked.parked || &parked == &connection) continue;
    const HelloInfo& earlier = *parked.record.hello;
    if (earlier.identity.pid != hello.identity.pid ||
        earlier.identity.start_time_ticks != hello.identity.start_time_ticks) {
      continue;
    }
    const bool same_image = hello.image.has_value() && hello.image->nonce == earlier.image->nonce &&
                            hello.image->connection_index > earlier.image->connection_index;
    parked.parked = false;  // continued here, or the process has exec'd: its image is over
    if (!same_image) continue;
    // Site ids and cumulative counters carry on across the image's connections, so the series
    // simply goes on; the new connection defines every site again.
    connection.record.series = std::move(parked.record.series);
    connection.record.census_count = parked.record.census_count;
    connection.gaps_before = parked.record.sequence_gaps;
    connection.record.continues = parked.id;
    parked.adopted = true;
  }
}

bool Collector::ParkingOver(const Connection& connection, Clock::time_point now) const {
  if (offline_) return false;  // a replay joins until Finish(), as the live run could
  const HelloInfo& hello = *connection.record.hello;
  const pid_t pid = connection.record.peer.has_value() ? connection.record.peer->pid : 0;
  if (pid <= 0 || static_cast<uint32_t>(pid) != hello.identity.pid) {
    return now - connection.parked_at > kParkedGrace;  // another pid namespace: not visible here
  }
  const std::optional<ProcStat> stat = ReadProcStat(pid);
  return !stat.has_value() || stat->state == 'Z' ||
         stat->start_ticks != hello.identity.start_time_ticks;
}

void Collector::UnparkExcess() {
  std::vector<Connection*> parked;
  for (auto& connection : connections_) {
    if (connection->parked) parked.push_back(connection.get());
  }
  if (parked.size() <= kMaxParked) return;
  std::sort(parked.begin(), parked.end(),
            [](const Connection* a, const Connection* b) { return a->parked_at < b->parked_at; });
  for (size_t i = 0; i + kMaxParked < parked.size(); ++i) parked[i]->parked = false;
}

void Collector::Close(Connection& connection) {
  if (!connection.open) return;
  connection.open = false;
  if (connection.fd >= 0) close(connection.fd);
  connection.fd = -1;
  // A Hello with nothing after it: complete now.
  if (!connection.record.hello.has_value()) connection.record.hello = connection.decoder.hello();
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
    if (connection->adopted) continue;  // its series went on in a later connection
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
