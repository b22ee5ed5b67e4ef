// A leak inside an inlined function, through std::unordered_map, built -O2 -g without frame
// pointers: the report must name the inlined function as inlined, with its own line, and the
// function it was inlined into with the line of that call.
#include <cstdio>
#include <string>
#include <unordered_map>

#define NOINLINE __attribute__((noinline, optimize("no-optimize-sibling-calls")))

namespace {

// Never destroyed, so the final census still holds every entry.
auto* g_sessions = new std::unordered_map<int, std::string>();

inline __attribute__((always_inline)) void remember_session(int id) {
  g_sessions->emplace(id, std::string(100, 'x'));  // LEAK LINE
}

NOINLINE void handle_request(int id) {
  remember_session(id);  // CALL LINE
}

}  // namespace

int main() {
  for (int id = 0; id < 300; ++id) handle_request(id);
  std::printf("inlined_leak done %zu\n", g_sessions->size());
  return 0;
}
