#include "report/commands/http_server.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "httplib.h"

namespace dw::report {
namespace {

// Threads answering requests. A scraper keeps its connection alive and holds a thread while it
// does; three serve Prometheus, a person with curl and one more.
constexpr size_t kServerThreads = 3;

// The host must resolve before httplib is asked to bind, since its bind says only yes or no.
absl::Status CheckResolves(const ListenAddress& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const int error = getaddrinfo(address.host.c_str(), nullptr, &hints, &found);
  if (error != 0) {
    return absl::InvalidArgumentError(
        fmt::format("--metrics: cannot resolve '{}': {}", address.host, gai_strerror(error)));
  }
  freeaddrinfo(found);
  return absl::OkStatus();
}

// SO_REUSEADDR (a restarted collector rebinds at once), but not httplib's SO_REUSEPORT.
void ExclusivePort(int socket_fd) {
  int yes = 1;
  setsockopt(socket_fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  const auto invalid = [&text](std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("--metrics wants HOST:PORT (e.g. 127.0.0.1:9464), got '{}': {}", text, why));
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return invalid("no port");
  ListenAddress address;
  address.host = text.substr(0, colon);
  if (address.host.size() >= 2 && address.host.front() == '[' && address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  } else if (address.host.find(':') != std::string::npos) {
    return invalid("an IPv6 address goes in brackets, as [::1]:9464");
  }
  if (address.host.empty()) return invalid("no host (0.0.0.0 for every interface)");
  if (!absl::SimpleAtoi(text.substr(colon + 1), &address.port) || address.port < 0 ||
      address.port > 65535) {
    return invalid("the port is not a number from 0 to 65535");
  }
  return address;
}

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const ListenAddress& address, std::map<std::string, Handler> routes) {
  if (absl::Status status = CheckResolves(address); !status.ok()) return status;
  auto impl = std::make_unique<Impl>();
  httplib::Server& server = impl->server;
  server.set_socket_options(ExclusivePort);
  server.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  for (auto& [path, handler] : routes) {
    server.Get(
        path, [handler = std::move(handler)](const httplib::Request&, httplib::Response& response) {
          const HttpResponse page = handler();
          response.set_content(*page.body, page.content_type.c_str());
        });
  }
  errno = 0;
  const int port = address.port == 0
                       ? server.bind_to_any_port(address.host)
                       : (server.bind_to_port(address.host, address.port) ? address.port : -1);
  if (port < 0) {
    return absl::InvalidArgumentError(
        fmt::format("--metrics: cannot listen on {}:{}: {}", address.host, address.port,
                    errno != 0 ? std::strerror(errno) : "bind failed"));
  }
  // The server's threads take no process signals: the collector reads those from its signalfd,
  // and a scraper that hangs up mid-answer must give EPIPE, not a SIGPIPE that kills us.
  impl->thread = std::thread([&server] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    server.listen_after_bind();
  });
  // stop() does nothing before the server runs: wait for it, so the destructor cannot hang.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto result = std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
  result->port_ = port;
  return result;
}

}  // namespace dw::report
