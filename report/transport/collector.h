// collector.h: the listening side of the census protocol, one poll loop for all connections.
//
// A Collector owns a fresh directory (mkdtemp, then mode 0711: others may reach the socket by its
// exact name but not list the directory) holding the socket census.sock (mode 0777, so that a
// child of the run that switched to another uid can connect), accepts any number of connections
// (the target, its children and each exec image connect on their own), reads them non-blocking
// and decodes each with its own CensusStreamDecoder. A connection's EOF is normal: the process
// exited. A corrupt stream ends only that connection.
//
// `driftwatch collect` listens instead on a path of its choosing (Listen), for as long as it runs,
// and hands over each connection as soon as it ends (TakeEnded), so that a collector living for
// days holds only its live connections.
//
// One process image may come on several connections: a census thread that steps aside (unshare,
// setns, capset: docs/PITFALLS.md) comes back on a new one, with the same image nonce (the Image
// record) and a higher connection index. A connection of such an image that ends without its
// final census is parked, not handed over, while its process lives; when the image's next
// connection says hello, it takes over the parked one's series (ConnectionRecord::continues), so
// the image is one series, not one per connection. A parked connection is handed over as ended
// once its process is gone, another image of the same process (an exec) says hello, or, when its
// process cannot be seen from here (another pid namespace), after kParkedGrace. Offline
// (replayed) connections stay parked until Finish(), which makes a replay join what the live run
// joined.
//
// Who may connect (docs/SECURITY.md): a peer whose SO_PEERCRED uid is ours, or one the admission
// check (set_admission: `driftwatch run` asks whether the pid belongs to the run) accepts. Anyone
// else is closed at once, unread, and listed in refused(). When accept() fails for want of fds
// (EMFILE, ENFILE), a reserve fd is given up to accept the peer and close it, so the listener
// stops being readable instead of waking poll() forever; the peer is listed in turned_away().
//
// Thread-safety: not thread-safe; driven by one thread. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "report/decode/census.h"
#include "report/decode/census_stream.h"
#include "report/store/process_series.h"
#include "report/transport/peer.h"

namespace dw::report {

// Everything received on one connection, i.e. from one process image.
struct ConnectionRecord {
  std::optional<PeerInfo> peer;  // absent for offline (replayed) connections
  // What /proc said of the peer when its connection was accepted (live connections only): the
  // name users know it by, which the exe of the Hello may not be (a symlinked binary).
  std::optional<ProcessNames> names;
  std::optional<HelloInfo> hello;  // absent if the peer never sent a Hello
  // The last complete census; its counters (every site's latest values) are filled in when the
  // connection ends, empty before.
  std::optional<Census> latest;
  ProcessSeries series;
  absl::flat_hash_map<uint32_t, SiteStack> sites;  // every site defined on the connection
  size_t census_count = 0;
  uint64_t sequence_gaps = 0;
  // The id of the earlier connection of the same process image whose series this one carries on
  // (see above); that connection is never handed over on its own.
  std::optional<uint32_t> continues;
  bool saw_final = false;    // a census flagged kCensusFinal arrived
  bool eof = false;          // the peer closed the connection
  std::string stream_error;  // corrupt or truncated stream; empty when clean
};

class Collector {
 public:
  // Sees the raw bytes of every connection exactly as read, for `driftwatch run --record`
  // (report/commands/recording.h). Connection ids are 0, 1, 2, ... in accept order, the order
  // Finish() hands the records over. Called from PollOnce() on the collecting thread.
  class Tap {
   public:
    virtual ~Tap() = default;
    virtual void OnOpen(uint32_t connection) = 0;
    virtual void OnBytes(uint32_t connection, std::string_view bytes) = 0;
    // The peer closed the connection (`read_error` empty) or reading it failed.
    virtual void OnClose(uint32_t connection, std::string_view read_error) = 0;
  };

  // Creates the directory and the listening socket. The directory goes under $TMPDIR when that
  // leaves room for the socket path, else under /tmp.
  static absl::StatusOr<std::unique_ptr<Collector>> Create();
  // A collector without a socket whose connections the caller feeds (the replay of a recording,
  // `driftwatch report`). The bytes go through exactly the decoding of a live connection, so a
  // replay sees what the live run saw.
  static std::unique_ptr<Collector> CreateOffline();
  // Listens at `path` (`driftwatch collect`), with the socket file at `mode`. A socket file left
  // there by a collector that is gone is replaced; a live one, or any other file, is an error.
  // The destructor removes the socket file if it is still the one created here.
  static absl::StatusOr<std::unique_ptr<Collector>> Listen(const std::string& path, mode_t mode);
  ~Collector();  // closes all sockets and removes the socket and its directory
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  const std::string& socket_path() const { return socket_path_; }

  // Polls the collector's sockets together with `extra` (whose revents are filled in) for up to
  // `timeout_ms`, then accepts and reads whatever is ready. Returns whether any connection was
  // accepted or any bytes or EOF were read.
  absl::StatusOr<bool> PollOnce(int timeout_ms, std::span<pollfd> extra);

  // Connections accepted and not yet at EOF (or failed).
  size_t open_connections() const;

  // Closes every connection (recording truncation for those still open) and hands over what was
  // received, in the order the connections were accepted.
  std::vector<ConnectionRecord> Finish();

  // Hands over the connections that ended since the last call (EOF, read error or corrupt
  // stream), in accept order, and forgets them: their memory is the caller's now.
  struct Ended {
    uint32_t id = 0;
    ConnectionRecord record;
  };
  std::vector<Ended> TakeEnded();
  // Ids of the connections still open, in accept order.
  std::vector<uint32_t> OpenIds() const;
  // What an open connection received so far; null for an id that is not open.
  const ConnectionRecord* Peek(uint32_t connection) const;
  // A copy of an open connection's record as Finish() would hand it over now (every site's
  // stack and latest counters included), for analysing a process while it runs. Costs a copy
  // of its series and sites. Null when the id is not open.
  std::optional<ConnectionRecord> Snapshot(uint32_t connection) const;

  // How long a parked connection waits for its image's next connection when its process cannot
  // be looked up in /proc (it runs in another pid namespace).
  static constexpr std::chrono::seconds kParkedGrace{30};
  // Parked connections beyond this many are handed over oldest first, so that a hostile or
  // broken peer cannot make the collector hold connections without bound.
  static constexpr size_t kMaxParked = 1024;

  // Not owned; null (the default) for none. Set before the first PollOnce().
  void set_tap(Tap* tap) { tap_ = tap; }

  // Decides about peers whose uid is not ours; unset (the default), they are all refused.
  using Admission = std::function<bool(const PeerInfo& peer)>;
  void set_admission(Admission admission) { admission_ = std::move(admission); }

  // Peers closed unread because the admission check refused them, once per pid, in order; at
  // most kMaxListedPeers, so that a peer hammering the socket cannot grow them without bound.
  static constexpr size_t kMaxListedPeers = 1024;
  const std::vector<PeerInfo>& refused() const { return refused_; }
  // Peers accepted and closed at once because the collector had no fd left for them (listed as
  // refused() is), and how many connections that was in all.
  const std::vector<PeerInfo>& turned_away() const { return turned_away_; }
  size_t turned_away_connections() const { return turned_away_connections_; }

  // Offline connections (CreateOffline): the replay of Tap events. OpenOffline() returns the new
  // connection's id (0, 1, 2, ...). Feeding or ending a connection that already ended (a corrupt
  // stream ends it early, as live) does nothing. Ids must come from OpenOffline().
  uint32_t OpenOffline();
  void FeedOffline(uint32_t connection, std::string_view bytes);
  void EndOffline(uint32_t connection, std::string_view read_error);

 private:
  using Clock = std::chrono::steady_clock;

  struct Connection {
    int fd = -1;  // -1 for offline connections, and once closed
    uint32_t id = 0;
    bool open = true;
    // Ended without its final census; may yet be continued by its image's next connection.
    bool parked = false;
    Clock::time_point parked_at{};
    // Its record went to the connection that continues it: dropped, never handed over.
    bool adopted = false;
    uint64_t gaps_before = 0;  // sequence gaps of the connections it continues
    CensusStreamDecoder decoder;
    ConnectionRecord record;
  };

  Collector() = default;
  // Binds socket_path_ at `mode` and listens.
  absl::Status Bind(mode_t mode);
  static std::unique_ptr<Connection> NewConnection();
  void AcceptAll();
  // SO_PEERCRED of `fd`, and whether the peer may connect; closes `fd` and lists the peer when
  // not.
  bool Admit(int fd, PeerInfo& peer);
  // accept() failed with EMFILE or ENFILE: frees the reserve fd to take the first pending peer
  // and close it, so poll() does not wake at once forever; pauses the listener if even that fails.
  void TurnAwayOne();
  // Returns true when something was read or the connection ended.
  bool ReadFrom(Connection& connection);
  // What happens to bytes and to the end of a connection, live or offline.
  void Consume(Connection& connection, std::string_view bytes);
  void EndOfStream(Connection& connection, std::string_view read_error);
  void Drain(Connection& connection);
  // Once the Hello is complete: joins `connection` to a parked earlier connection of its image,
  // and ends the parked connections of the process's earlier images.
  void JoinImage(Connection& connection);
  // Whether a parked connection stops waiting for its image's next connection.
  bool ParkingOver(const Connection& connection, Clock::time_point now) const;
  void UnparkExcess();
  void Close(Connection& connection);
  Connection* FindConnection(uint32_t id) const;

  std::string dir_;
  bool offline_ = false;
  dev_t socket_dev_ = 0;  // of the socket file Listen() created, to remove only that one
  ino_t socket_ino_ = 0;
  uint32_t next_id_ = 0;
  std::string socket_path_;
  int listen_fd_ = -1;
  int reserve_fd_ = -1;  // /dev/null, given up to accept one peer when fds run out
  Clock::time_point listener_paused_until_{};
  Admission admission_;
  std::vector<PeerInfo> refused_;
  std::vector<PeerInfo> turned_away_;
  size_t turned_away_connections_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;
  Tap* tap_ = nullptr;
};

}  // namespace dw::report
