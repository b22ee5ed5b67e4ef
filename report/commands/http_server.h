// http_server.h: a small HTTP server of the collector, on threads of its own: GET on a path
// returns what that path's handler returns. `driftwatch collect --metrics` serves /metrics with
// it; other read-only pages (a heap profile, a status page) are other paths of the same server.
//
// Handlers run on the server's threads, concurrently with the caller and with each other, so
// they must only read state published for them (PublishedText below), never the collector's
// own. cpp-httplib (Debian's libcpp-httplib-dev, a compiled library) does the HTTP; no header
// of it is included here.
//
// The listening socket does not share its port (no SO_REUSEPORT, which httplib sets by default):
// a second collector on the same port is an error, not a second server taking half the scrapes.
//
// Thread-safety: Start and the destructor from one thread; PublishedText is thread-safe.
// Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace dw::report {

// "HOST:PORT" or "[IPv6]:PORT"; port 0 asks for any free port.
struct ListenAddress {
  std::string host;
  int port = 0;
};
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

struct HttpResponse {
  std::string content_type;
  std::shared_ptr<const std::string> body;  // shared, so that serving a snapshot copies nothing
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;

  // Binds `address` and serves `routes` (path -> handler) until destroyed. Errors, each one line:
  // an unresolvable host, a port in use or not allowed.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const ListenAddress& address,
                                                           std::map<std::string, Handler> routes);
  ~HttpServer();  // stops serving and joins its threads
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }  // the bound port (the one chosen, for port 0)

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The latest version of a text that one thread publishes and others read: a reader gets a
// whole version, the old or the new, and never waits for the one who renders the next.
class PublishedText {
 public:
  void Publish(std::string text) {
    auto next = std::make_shared<const std::string>(std::move(text));
    std::lock_guard lock(mutex_);
    text_.swap(next);
  }  // the old version is freed here, outside the lock, unless a reader still holds it
  std::shared_ptr<const std::string> Latest() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const std::string> text_ = std::make_shared<const std::string>();
};

}  // namespace dw::report
