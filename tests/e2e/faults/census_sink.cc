// census_sink.cc: a stand-in collector for the fault tests, which can be killed, stopped,
// restarted and starved of fds while targets report to it.
//
// It listens on a fixed socket path (the real Collector always makes its own directory, and a
// restarted collector must come back on the same path), decodes every connection with the
// collector's own CensusStreamDecoder, and writes one line per event to its log, flushed at once
// so that a test can follow it while the sink runs (or after SIGKILL):
//   listening path=P
//   open conn=C
//   hello conn=C pid=P
//   census conn=C pid=P seq=S realtime_ns=T heap_live=B fds=F dropped=D final=0|1 bytes=N
//     (bytes: read on the connection so far, up to the end of what was last read)
//   eof conn=C
//   error conn=C what=...
//   accept_failed errno=E            (once per run of failures; the sink then waits, never spins)
// It exits 0 on SIGTERM or SIGINT.
//
// Hostile modes (--mode) stand for broken collectors: `silent` accepts and never reads (until
// SIGTERM, when it decodes what is queued),
// `garbage` sends bytes back and keeps reading, `close` closes each connection at once.
//
// Usage: census_sink --socket PATH [--log FILE] [--mode normal|silent|garbage|close]
//                    [--backlog N]   (listen() backlog, default 64)
// Thread-safety: single-threaded program. Allocation: yes (test tool). Never runs inside a hook.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "report/decode/census.h"
#include "report/decode/census_stream.h"

namespace {

enum class Mode { kNormal, kSilent, kGarbage, kClose };

struct Options {
  std::string socket_path;
  std::string log_path;
  Mode mode = Mode::kNormal;
  int backlog = 64;
};

struct Connection {
  int fd = -1;
  unsigned id = 0;
  uint32_t pid = 0;
  dw::report::CensusStreamDecoder decoder;
};

volatile sig_atomic_t g_stop = 0;
FILE* g_log = stdout;

void OnStopSignal(int) { g_stop = 1; }

template <typename... Args>
void Log(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(g_log, format, std::forward<Args>(args)...);
  fputc('\n', g_log);
  fflush(g_log);
}

bool ParseMode(std::string_view text, Mode* mode) {
  if (text == "normal")
    *mode = Mode::kNormal;
  else if (text == "silent")
    *mode = Mode::kSilent;
  else if (text == "garbage")
    *mode = Mode::kGarbage;
  else if (text == "close")
    *mode = Mode::kClose;
  else
    return false;
  return true;
}

bool ParseOptions(int argc, char** argv, Options* options) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--socket")
      options->socket_path = argv[i + 1];
    else if (flag == "--log")
      options->log_path = argv[i + 1];
    else if (flag == "--backlog")
      options->backlog = atoi(argv[i + 1]);
    else if (flag == "--mode") {
      if (!ParseMode(argv[i + 1], &options->mode)) return false;
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && !options->socket_path.empty();
}

// Binds PATH afresh: a socket file left by a killed sink is removed first, as a restarted
// collector would do.
int Listen(const std::string& path, int backlog) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return -1;
  memcpy(address.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, backlog) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void LogCensus(const Connection& connection, const dw::report::Census& census) {
  int64_t heap_live = 0;
  for (const auto& [site, counters] : census.counters[0]) heap_live += counters.LiveBytes();
  Log("census conn={} pid={} seq={} realtime_ns={} heap_live={} fds={} dropped={} final={} "
      "bytes={}",
      connection.id, connection.pid, census.sequence, census.realtime_ns, heap_live,
      census.totals.fd_count, census.totals.censuses_dropped, census.final ? 1 : 0,
      connection.decoder.bytes_consumed());
}

// Reads what is there. Returns false when the connection is over (EOF, error, corrupt stream).
bool ReadFrom(Connection& connection) {
  char buffer[65536];
  for (;;) {
    ssize_t got = read(connection.fd, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (got <= 0) {
      if (got < 0)
        Log("error conn={} what=read errno {}", connection.id, errno);
      else
        Log("eof conn={}", connection.id);
      return false;
    }
    absl::Status status = connection.decoder.Feed(std::string_view(buffer, size_t(got)));
    if (connection.pid == 0 && connection.decoder.hello().has_value()) {
      connection.pid = connection.decoder.hello()->identity.pid;
      Log("hello conn={} pid={}", connection.id, connection.pid);
    }
    for (const dw::report::Census& census : connection.decoder.TakeCensuses()) {
      LogCensus(connection, census);
    }
    if (!status.ok()) {
      Log("error conn={} what={}", connection.id, std::string(status.message()));
      return false;
    }
  }
}

// Accepts every pending connection. Returns false when accept fails for lack of fds (or
// memory): the caller then stops polling the listener for a while instead of spinning.
bool AcceptAll(int listener, const Options& options, unsigned* next_id,
               std::vector<std::unique_ptr<Connection>>* connections, bool* failing) {
  for (;;) {
    int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (!*failing) Log("accept_failed errno={}", errno);
      *failing = true;
      return false;
    }
    *failing = false;
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    connection->id = (*next_id)++;
    Log("open conn={}", connection->id);
    if (options.mode == Mode::kClose) {
      close(fd);
      Log("closed conn={}", connection->id);
      continue;
    }
    if (options.mode == Mode::kGarbage) {
      static const char kGarbage[] = "\xff\xfe garbage from a broken collector \x00\x01\x02";
      for (int i = 0; i < 64; ++i) (void)send(fd, kGarbage, sizeof(kGarbage), MSG_NOSIGNAL);
    }
    connections->push_back(std::move(connection));
  }
}

uint64_t NowMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return uint64_t(now.tv_sec) * 1000 + uint64_t(now.tv_nsec) / 1000000;
}

int Serve(int listener, const Options& options) {
  std::vector<std::unique_ptr<Connection>> connections;
  unsigned next_id = 0;
  bool accept_failing = false;
  uint64_t accept_again_ms = 0;
  while (!g_stop) {
    std::vector<pollfd> fds;
    // After EMFILE the listener stays readable: leave it out for 100 ms rather than spin.
    bool accepting = NowMs() >= accept_again_ms;
    fds.push_back({accepting ? listener : -1, POLLIN, 0});
    for (const auto& connection : connections) {
      fds.push_back({options.mode == Mode::kSilent ? -1 : connection->fd, POLLIN, 0});
    }
    int ready = poll(fds.data(), fds.size(), 100);
    if (ready < 0 && errno != EINTR) return 1;
    if (ready <= 0) continue;
    if (accepting && fds[0].revents != 0 &&
        !AcceptAll(listener, options, &next_id, &connections, &accept_failing)) {
      accept_again_ms = NowMs() + 100;
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      Connection& connection = *connections[i - 1];
      if (fds[i].revents == 0 || ReadFrom(connection)) continue;
      close(connection.fd);
      connection.fd = -1;
    }
    std::erase_if(connections, [](const auto& connection) { return connection->fd < 0; });
  }
  // A silent sink reads what it was sent only now, so the test can see that the buffer filled
  // (the shim's own dropped-census count) and what made it through.
  if (options.mode == Mode::kSilent) {
    for (const auto& connection : connections) ReadFrom(*connection);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseOptions(argc, argv, &options)) {
    fmt::print(stderr,
               "usage: census_sink --socket PATH [--log FILE] "
               "[--mode normal|silent|garbage|close] [--backlog N]\n");
    return 2;
  }
  if (!options.log_path.empty()) {
    g_log = fopen(options.log_path.c_str(), "a");
    if (g_log == nullptr) {
      fmt::print(stderr, "census_sink: cannot open {}: {}\n", options.log_path, strerror(errno));
      return 2;
    }
  }
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int listener = Listen(options.socket_path, options.backlog);
  if (listener < 0) {
    fmt::print(stderr, "census_sink: cannot listen on {}: {}\n", options.socket_path,
               strerror(errno));
    return 2;
  }
  Log("listening path={}", options.socket_path);
  int result = Serve(listener, options);
  close(listener);
  return result;
}
