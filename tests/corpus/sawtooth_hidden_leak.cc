// Leak: a tiny leak hidden under a large sawtooth. A batch writer accumulates ~2 MB of records
// and flushes them every second (GC-like), while each flush also leaks its 48-byte batch
// descriptor into a stats list that is never trimmed.
// Expect: drift, heap, LeakBatchDescriptor.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "corpus_service.h"

namespace {

struct Record {
  char payload[200];
};
struct BatchDescriptor {
  uint64_t id;
  uint64_t records;
  char name[32];
};

std::vector<std::unique_ptr<Record>> g_batch;
std::vector<BatchDescriptor*> g_flushed;  // meant for a report that never reads it

CORPUS_NOINLINE void LeakBatchDescriptor(uint64_t id, size_t records) {
  auto* descriptor = new BatchDescriptor{id, records, {}};
  std::strcpy(descriptor->name, "batch");
  g_flushed.push_back(descriptor);
}

CORPUS_NOINLINE void Flush(uint64_t request) {
  LeakBatchDescriptor(request, g_batch.size());
  g_batch.clear();
  g_batch.shrink_to_fit();
}

void Handle(uint64_t request) {
  for (int i = 0; i < 10; ++i) g_batch.push_back(std::make_unique<Record>());
  if (request % 1000 == 999) Flush(request);  // every second at 1000 requests/s
}

}  // namespace

int main() { return corpus_serve(1000, Handle); }
