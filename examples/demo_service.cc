// demo_service: a small request-serving loop with one slow leak, for `scripts/demo`.
//
// It serves simulated HTTP-ish requests at a steady rate (200/s by default) until SIGTERM or
// SIGINT, then exits with status 0. Each request goes through the paths a real service has:
//
//   * parsing:   the raw request text, the header list and the query parameters are temporaries
//                (std::string, std::vector) that are freed when the request is done;
//   * caching:   user profiles sit in a bounded LRU cache (ProfileCache) that fills up during the
//                first second or two, then evicts one entry for each one it inserts, so its live
//                size holds still;
//   * rendering: the response body is built in a temporary std::string;
//   * the leak:  SessionRegistry::Remember() records a Session for every request and nothing ever
//                evicts it. A few hundred bytes per request, about 60 KB/s at 200 requests/s: the
//                kind of drift that only shows after hours in production.
//
// driftwatch should put SessionRegistry::Remember (and what it calls) at the top of its table,
// and not the cache or the per-request temporaries, which churn but do not grow.
//
// Usage: demo_service [requests_per_second]
// Prints one line on start and one on exit, both to stderr; nothing per request.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace demo {
namespace {

volatile sig_atomic_t g_stop = 0;

void OnStopSignal(int) { g_stop = 1; }

// Deterministic, allocation-free pseudo-random numbers (xorshift64*).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed ? seed : 1) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------------------------------------
// Requests: generated as raw text, then parsed into temporaries.

struct Request {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
};

const char* const kUserAgents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Safari/605.1.15",
    "curl/7.88.1",
    "okhttp/4.12.0 (android-client 3.18.2)",
};

std::string GenerateRawRequest(Rng& rng) {
  // User ids follow a skewed distribution: most traffic hits a few hundred users, the rest
  // spreads over ten thousand, so the cache keeps missing a little and keeps evicting.
  uint64_t user = rng.Below(4) != 0 ? rng.Below(300) : rng.Below(10000);
  std::string raw = "GET /users/" + std::to_string(user) +
                    "/feed?limit=" + std::to_string(10 + rng.Below(40)) +
                    "&lang=en-GB&trace=" + std::to_string(rng.Next()) + " HTTP/1.1\r\n";
  raw += "Host: api.internal.example\r\n";
  raw += "User-Agent: ";
  raw += kUserAgents[rng.Below(std::size(kUserAgents))];
  raw += "\r\nAccept: application/json\r\nX-Request-Id: " + std::to_string(rng.Next()) + "\r\n\r\n";
  return raw;
}

bool ParseRequest(std::string_view raw, Request& out) {
  size_t line_end = raw.find("\r\n");
  if (line_end == std::string_view::npos) return false;
  std::string_view line = raw.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 <= sp1) return false;
  out.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t qmark = target.find('?');
  out.path = std::string(target.substr(0, qmark));
  if (qmark != std::string_view::npos) {
    std::string_view qs = target.substr(qmark + 1);
    while (!qs.empty()) {
      size_t amp = qs.find('&');
      std::string_view kv = qs.substr(0, amp);
      size_t eq = kv.find('=');
      out.query.emplace_back(std::string(kv.substr(0, eq)), eq == std::string_view::npos
                                                                ? std::string()
                                                                : std::string(kv.substr(eq + 1)));
      qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
    }
  }
  std::string_view rest = raw.substr(line_end + 2);
  while (true) {
    size_t end = rest.find("\r\n");
    if (end == std::string_view::npos || end == 0) break;
    std::string_view header = rest.substr(0, end);
    size_t colon = header.find(':');
    if (colon != std::string_view::npos) {
      size_t value = header.find_first_not_of(' ', colon + 1);
      out.headers.emplace_back(
          std::string(header.substr(0, colon)),
          std::string(header.substr(value == std::string_view::npos ? header.size() : value)));
    }
    rest = rest.substr(end + 2);
  }
  return true;
}

std::string_view Header(const Request& request, std::string_view name) {
  for (const auto& [key, value] : request.headers)
    if (key == name) return value;
  return {};
}

// ---------------------------------------------------------------------------------------------
// A bounded LRU cache of user profiles: warms up, then holds still.

struct UserProfile {
  uint64_t user_id = 0;
  std::string display_name;
  std::string avatar_url;
  std::vector<uint64_t> followed;
};

class ProfileCache {
 public:
  explicit ProfileCache(size_t capacity) : capacity_(capacity) { index_.reserve(capacity); }

  const UserProfile& Get(uint64_t user_id) {
    auto it = index_.find(user_id);
    if (it != index_.end()) {
      entries_.splice(entries_.begin(), entries_, it->second);  // mark as most recently used
      return *it->second;
    }
    if (entries_.size() >= capacity_) {
      index_.erase(entries_.back().user_id);
      entries_.pop_back();
    }
    entries_.push_front(LoadProfile(user_id));
    index_.emplace(user_id, entries_.begin());
    return entries_.front();
  }

 private:
  static UserProfile LoadProfile(uint64_t user_id) {
    UserProfile profile;
    profile.user_id = user_id;
    profile.display_name = "user-" + std::to_string(user_id) + " (display name loaded from db)";
    profile.avatar_url = "https://cdn.example/avatars/" + std::to_string(user_id) + ".png";
    for (uint64_t i = 0; i < 8 + user_id % 16; ++i) profile.followed.push_back(user_id * 31 + i);
    return profile;
  }

  size_t capacity_;
  std::list<UserProfile> entries_;  // most recently used first
  std::unordered_map<uint64_t, std::list<UserProfile>::iterator> index_;
};

// ---------------------------------------------------------------------------------------------
// The leak: a session registry that remembers every request's session and never forgets one.

struct Session {
  uint64_t id = 0;
  uint64_t user_id = 0;
  int64_t created_ns = 0;
  std::string user_agent;  // copied from the request: 11-83 bytes, mostly past SSO
  std::string last_path;   // e.g. "/users/123/feed"
  std::vector<std::string> scopes;
};

class SessionRegistry {
 public:
  // Records the session behind a request. Clients are expected to send the session cookie back so
  // that the id repeats, and a sweeper was supposed to expire idle sessions; neither happens, so
  // every request adds an entry that stays forever.
  __attribute__((noinline)) void Remember(uint64_t session_id, uint64_t user_id,
                                          const Request& request, int64_t now_ns) {
    Session& session = sessions_[session_id];
    session.id = session_id;
    session.user_id = user_id;
    session.created_ns = now_ns;
    session.user_agent = std::string(Header(request, "User-Agent"));
    session.last_path = request.path;
    session.scopes = {"feed:read", "profile:read"};
  }

  size_t size() const { return sessions_.size(); }

 private:
  std::unordered_map<uint64_t, Session> sessions_;
};

// Never destroyed, like most process-wide registries: what it holds is still live at exit.
SessionRegistry& Registry() {
  static SessionRegistry* registry = new SessionRegistry;
  return *registry;
}

// ---------------------------------------------------------------------------------------------
// Serving.

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

uint64_t UserIdFromPath(std::string_view path) {
  // "/users/<id>/feed"
  constexpr std::string_view kPrefix = "/users/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return 0;
  return std::strtoull(std::string(path.substr(kPrefix.size())).c_str(), nullptr, 10);
}

std::string RenderFeed(const UserProfile& profile, size_t limit) {
  std::string body = "{\"user\":{\"id\":" + std::to_string(profile.user_id) + ",\"name\":\"" +
                     profile.display_name + "\",\"avatar\":\"" + profile.avatar_url +
                     "\"},\"items\":[";
  for (size_t i = 0; i < limit; ++i) {
    if (i) body += ',';
    body += "{\"id\":" + std::to_string(profile.followed[i % profile.followed.size()] * 1000 + i) +
            ",\"text\":\"post number " + std::to_string(i) + "\"}";
  }
  body += "]}";
  return body;
}

class Service {
 public:
  Service() : rng_(0x5eed), cache_(256) {}

  // Handles one request; returns a checksum of the response so that nothing is optimized away.
  uint64_t HandleOne() {
    std::string raw = GenerateRawRequest(rng_);
    Request request;
    if (!ParseRequest(raw, request)) return 0;

    uint64_t user_id = UserIdFromPath(request.path);
    size_t limit = 10;
    for (const auto& [key, value] : request.query)
      if (key == "limit") limit = std::strtoul(value.c_str(), nullptr, 10);

    const UserProfile& profile = cache_.Get(user_id);
    std::string body = RenderFeed(profile, limit);

    // A fresh session id per request: the bug that makes the registry grow.
    Registry().Remember(rng_.Next(), user_id, request, NowNs());
    ++served_;
    return body.size();
  }

  uint64_t served() const { return served_; }

 private:
  Rng rng_;
  ProfileCache cache_;
  uint64_t served_ = 0;
};

int Run(long requests_per_second) {
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the sleep returns early so that shutdown is prompt
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  std::fprintf(stderr, "demo_service: pid %d serving %ld requests/s until SIGTERM or SIGINT\n",
               static_cast<int>(getpid()), requests_per_second);

  Service service;
  const int64_t period_ns = 1'000'000'000 / requests_per_second;
  int64_t next = NowNs();
  uint64_t checksum = 0;
  while (!g_stop) {
    checksum += service.HandleOne();
    // Fixed-rate schedule on absolute deadlines; if we fall behind, skip ahead rather than burst.
    next += period_ns;
    int64_t now = NowNs();
    if (next < now) next = now;
    timespec deadline{static_cast<time_t>(next / 1'000'000'000),
                      static_cast<long>(next % 1'000'000'000)};
    while (!g_stop &&
           clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr) == EINTR) {
    }
  }

  std::fprintf(
      stderr,
      "demo_service: stopping after %llu requests (%zu sessions remembered, checksum %llu)\n",
      static_cast<unsigned long long>(service.served()), Registry().size(),
      static_cast<unsigned long long>(checksum));
  return 0;
}

}  // namespace
}  // namespace demo

int main(int argc, char** argv) {
  long rate = 200;
  if (argc > 1) {
    rate = std::strtol(argv[1], nullptr, 10);
    if (rate <= 0 || rate > 1'000'000) {
      std::fprintf(stderr, "usage: %s [requests_per_second (1..1000000, default 200)]\n", argv[0]);
      return 2;
    }
  }
  return demo::Run(rate);
}
