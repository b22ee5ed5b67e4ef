// Steady: GC-like sawtooth. Records pile up in a batch and are freed all at once every 2 s.
// Expect: steady.
#include <cstdint>
#include <memory>
#include <vector>

#include "corpus_service.h"

namespace {

struct Record {
  char payload[300];
};
std::vector<std::unique_ptr<Record>> g_batch;

CORPUS_NOINLINE void Accumulate() { g_batch.push_back(std::make_unique<Record>()); }

void Handle(uint64_t request) {
  for (int i = 0; i < 5; ++i) Accumulate();
  if (request % 1000 == 999) g_batch.clear();  // every 2 s at 500 requests/s
}

}  // namespace

int main() { return corpus_serve(500, Handle); }
