// Leak: an unbounded intern table. User agent strings are interned "to save memory", but each
// contains a request-specific token, so every request adds a new entry.
// Expect: drift, heap, InternUserAgent.
#include <cstdint>
#include <string>
#include <unordered_set>

#include "corpus_service.h"

namespace {

std::unordered_set<std::string> g_interned;

CORPUS_NOINLINE const std::string* InternUserAgent(uint64_t request) {
  std::string agent = "Mozilla/5.0 (X11; Linux x86_64) session=" + std::to_string(request * 7919);
  return &*g_interned.insert(std::move(agent)).first;
}

void Handle(uint64_t request) { CORPUS_KEEP(InternUserAgent(request)); }

}  // namespace

int main() { return corpus_serve(200, Handle); }
