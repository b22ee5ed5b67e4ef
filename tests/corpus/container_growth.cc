// Leak: growth through std containers. An audit history std::map keyed by request id is
// appended to on every request and was supposed to be trimmed by a job that was never
// scheduled.
// Expect: drift, heap, RecordHistory.
#include <cstdint>
#include <map>
#include <string>

#include "corpus_service.h"

namespace {

std::map<uint64_t, std::string> g_history;

CORPUS_NOINLINE void RecordHistory(uint64_t request) {
  g_history.emplace(request, std::string(40, static_cast<char>('a' + request % 26)));
}

void Handle(uint64_t request) {
  std::string scratch(500, 'x');  // per-request temporary
  CORPUS_KEEP(scratch.data());
  RecordHistory(request);
}

}  // namespace

int main() { return corpus_serve(200, Handle); }
