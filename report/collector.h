// collector.h: the listening side of the census protocol, one poll loop for all connections.
//
// A Collector owns a fresh private directory (mkdtemp, mode 0700) holding the socket census.sock,
// accepts any number of connections (the target, its children and each exec image connect on
// their own), reads them non-blocking and decodes each with its own CensusStreamDecoder. A
// connection's EOF is normal: the process exited. A corrupt stream ends only that connection.
//
// Thread-safety: not thread-safe; driven by one thread. Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <poll.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "report/census.h"
#include "report/census_stream.h"
#include "report/process_series.h"

namespace dw::report {

// Everything received on one connection, i.e. from one process image.
struct ConnectionRecord {
  std::optional<HelloInfo> hello;  // absent if the peer never sent a Hello
  std::optional<Census> latest;    // the last complete census
  ProcessSeries series;
  absl::flat_hash_map<uint32_t, SiteStack> sites;  // every site defined on the connection
  size_t census_count = 0;
  uint64_t sequence_gaps = 0;
  bool saw_final = false;    // a census flagged kCensusFinal arrived
  bool eof = false;          // the peer closed the connection
  std::string stream_error;  // corrupt or truncated stream; empty when clean
};

class Collector {
 public:
  // Sees the raw bytes of every connection exactly as read, for `driftwatch run --record`
  // (report/recording.h). Connection ids are 0, 1, 2, ... in accept order, the order Finish()
  // hands the records over. Called from PollOnce() on the collecting thread.
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

  // Not owned; null (the default) for none. Set before the first PollOnce().
  void set_tap(Tap* tap) { tap_ = tap; }

  // Offline connections (CreateOffline): the replay of Tap events. OpenOffline() returns the new
  // connection's id (0, 1, 2, ...). Feeding or ending a connection that already ended (a corrupt
  // stream ends it early, as live) does nothing. Ids must come from OpenOffline().
  uint32_t OpenOffline();
  void FeedOffline(uint32_t connection, std::string_view bytes);
  void EndOffline(uint32_t connection, std::string_view read_error);

 private:
  struct Connection {
    int fd = -1;  // -1 for offline connections, and once closed
    uint32_t id = 0;
    bool open = true;
    CensusStreamDecoder decoder;
    ConnectionRecord record;
  };

  Collector() = default;
  void AcceptAll();
  // Returns true when something was read or the connection ended.
  bool ReadFrom(Connection& connection);
  // What happens to bytes and to the end of a connection, live or offline.
  void Consume(Connection& connection, std::string_view bytes);
  void EndOfStream(Connection& connection, std::string_view read_error);
  void Drain(Connection& connection);
  void Close(Connection& connection);

  std::string dir_;
  std::string socket_path_;
  int listen_fd_ = -1;
  std::vector<std::unique_ptr<Connection>> connections_;
  Tap* tap_ = nullptr;
};

}  // namespace dw::report
