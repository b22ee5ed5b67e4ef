// Tests of the collector's HTTP server (commands/http_server.h) over real loopback sockets,
// read with cpp-httplib's client: --metrics address parsing, serving a route, errors for a port
// in use and a host that does not resolve, and readers that always get a whole published
// version while another thread publishes.
#include "report/commands/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "httplib.h"

namespace dw::report {
namespace {

using ::testing::HasSubstr;

TEST(HttpServerTest, ParsesListenAddresses) {
  absl::StatusOr<ListenAddress> v4 = ParseListenAddress("127.0.0.1:9464");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 9464);
  absl::StatusOr<ListenAddress> v6 = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  EXPECT_THAT(ParseListenAddress("127.0.0.1").status().message(), HasSubstr("no port"));
  EXPECT_THAT(ParseListenAddress(":9464").status().message(), HasSubstr("no host"));
  EXPECT_THAT(ParseListenAddress("::1:9464").status().message(), HasSubstr("brackets"));
  EXPECT_FALSE(ParseListenAddress("localhost:65536").ok());
  EXPECT_FALSE(ParseListenAddress("localhost:http").ok());
}

std::unique_ptr<HttpServer> Serve(const std::shared_ptr<PublishedText>& text, int port = 0) {
  std::map<std::string, HttpServer::Handler> routes;
  routes["/metrics"] = [text] {
    return HttpResponse{.content_type = "text/plain; version=0.0.4", .body = text->Latest()};
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start({.host = "127.0.0.1", .port = port}, std::move(routes));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

TEST(HttpServerTest, ServesTheLatestText) {
  auto text = std::make_shared<PublishedText>();
  text->Publish("up 1\n");
  std::unique_ptr<HttpServer> server = Serve(text);
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->port(), 0);
  httplib::Client client("127.0.0.1", server->port());
  httplib::Result first = client.Get("/metrics");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "up 1\n");
  EXPECT_EQ(first->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  text->Publish("up 2\n");
  httplib::Result second = client.Get("/metrics");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "up 2\n");
  httplib::Result missing = client.Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpServerTest, PortInUseAndUnresolvableHostAreErrors) {
  auto text = std::make_shared<PublishedText>();
  std::unique_ptr<HttpServer> server = Serve(text);
  ASSERT_NE(server, nullptr);
  absl::StatusOr<std::unique_ptr<HttpServer>> again =
      HttpServer::Start({.host = "127.0.0.1", .port = server->port()}, {});
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.status().message(), HasSubstr("Address already in use"));
  absl::StatusOr<std::unique_ptr<HttpServer>> nowhere =
      HttpServer::Start({.host = "no-such-host.invalid", .port = 0}, {});
  ASSERT_FALSE(nowhere.ok());
  EXPECT_THAT(nowhere.status().message(), HasSubstr("cannot resolve 'no-such-host.invalid'"));
}

// Version N is "N:" followed by N % 5000 'x's: a torn read would not match its own header.
std::string Version(int n) { return std::to_string(n) + ":" + std::string(n % 5000, 'x'); }

TEST(HttpServerTest, ReadersGetWholeVersionsWhilePublishing) {
  auto text = std::make_shared<PublishedText>();
  text->Publish(Version(0));
  std::unique_ptr<HttpServer> server = Serve(text);
  ASSERT_NE(server, nullptr);
  std::atomic<bool> done = false;
  std::thread publisher([&] {
    for (int n = 1; !done; ++n) text->Publish(Version(n));
  });
  httplib::Client client("127.0.0.1", server->port());
  int last = -1;
  for (int i = 0; i < 200; ++i) {
    httplib::Result page = client.Get("/metrics");
    ASSERT_TRUE(page);
    const int n = std::stoi(page->body.substr(0, page->body.find(':')));
    ASSERT_TRUE(page->body == Version(n)) << "a torn read of version " << n;
    ASSERT_GE(n, last);  // never an older version than one already served
    last = n;
  }
  done = true;
  publisher.join();
  EXPECT_GT(last, 0);
}

}  // namespace
}  // namespace dw::report
