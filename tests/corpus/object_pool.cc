// Steady: a preallocated object pool reused for every request, with a burst of growth at start.
// Expect: steady.
#include <cstdint>
#include <memory>
#include <vector>

#include "corpus_service.h"

namespace {

struct Connection {
  char buffer[4096];
};

class Pool {
 public:
  CORPUS_NOINLINE Connection* Acquire() {
    if (free_.empty()) {
      all_.push_back(std::make_unique<Connection>());
      return all_.back().get();
    }
    Connection* connection = free_.back();
    free_.pop_back();
    return connection;
  }
  void Release(Connection* connection) { free_.push_back(connection); }

 private:
  std::vector<std::unique_ptr<Connection>> all_;
  std::vector<Connection*> free_;
};

Pool g_pool;
std::vector<Connection*> g_in_flight;

void Handle(uint64_t) {
  g_in_flight.push_back(g_pool.Acquire());
  // Between 0 and 63 requests in flight: the pool stops growing at 64 connections.
  while (g_in_flight.size() > corpus_random() % 64) {
    g_pool.Release(g_in_flight.back());
    g_in_flight.pop_back();
  }
}

}  // namespace

int main() { return corpus_serve(500, Handle); }
