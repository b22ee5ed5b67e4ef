// Steady: an LRU cache that warms up and then holds still. The cache holds 3000 entries of
// ~1 KB; at 200 requests/s over a key space larger than the cache, it fills in the first ~20 s
// and then evicts as much as it inserts.
// Expect: steady.
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "corpus_service.h"

namespace {

class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  CORPUS_NOINLINE void Put(uint64_t key) {
    auto found = index_.find(key);
    if (found != index_.end()) {
      order_.splice(order_.begin(), order_, found->second);
      return;
    }
    order_.emplace_front(key, std::string(1000, 'v'));
    index_[key] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  size_t capacity_;
  std::list<std::pair<uint64_t, std::string>> order_;
  std::unordered_map<uint64_t, std::list<std::pair<uint64_t, std::string>>::iterator> index_;
};

LruCache g_cache(3000);

void Handle(uint64_t) { g_cache.Put(corpus_random() % 1000000); }

}  // namespace

int main() { return corpus_serve(200, Handle); }
