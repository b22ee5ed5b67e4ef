// stl: STL-heavy C++ churn, for bench/overhead.
//
// A word-index workload done the ordinary C++ way, where every container operation allocates:
// pseudo-random words (std::string, most beyond the small-string buffer) are counted in a
// std::map<std::string, int> and a std::unordered_map<std::string, std::vector<uint32_t>> (the
// positions of each word, growing vectors), sentences are built by string concatenation, and
// every 4096 words the oldest entries are erased and a sorted std::vector<std::string> snapshot is
// taken, so nodes, buckets, strings and vector buffers are allocated and freed all the time.
// Single-threaded; prints a checksum of the results, which no heap tracker may change.
//
// Usage: bench_stl [--scale X]   (X multiplies the words; default 1: 600 k words, ~1 s bare)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_scale.h"

namespace {

class Rng {  // xorshift64*: deterministic, allocation-free
 public:
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }

 private:
  uint64_t state_ = 0x9E3779B97F4A7C15ull;
};

// A word of 4-40 letters from a vocabulary of ~64k stems, so words repeat (map hits) and are
// mostly longer than std::string's 15-byte inline buffer (heap strings).
std::string Word(Rng& rng) {
  uint64_t r = rng.Next();
  std::string w = "w" + std::to_string(r % 65536);
  size_t extra = 3 + (r >> 20) % 37;
  while (w.size() < extra) w += static_cast<char>('a' + (w.size() * 7 + r % 26) % 26);
  return w;
}

uint64_t Hash(const std::string& s, uint64_t h) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

class Index {
 public:
  void Add(std::string word, uint32_t position) {
    ++counts_[word];
    positions_[word].push_back(position);
    order_.push_back(std::move(word));
  }

  // Forgets the oldest half of the words seen since the last trim, and sums what a snapshot of
  // the first 1024 words says (copies of the keys with their counts, sorted).
  uint64_t Trim() {
    uint64_t h = counts_.size() + positions_.size();
    size_t drop = order_.size() / 2;
    for (size_t i = 0; i < drop; i++) {
      auto it = counts_.find(order_[i]);
      if (it != counts_.end() && --it->second == 0) counts_.erase(it);
      auto pos = positions_.find(order_[i]);
      if (pos != positions_.end()) {
        h += pos->second.size();
        positions_.erase(pos);
      }
    }
    order_.erase(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(drop));
    std::vector<std::string> snapshot;
    for (auto it = counts_.begin(); it != counts_.end() && snapshot.size() < 1024; ++it) {
      snapshot.push_back(it->first + ":" + std::to_string(it->second));
    }
    std::sort(snapshot.begin(), snapshot.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() > b.size() : a < b;
    });
    for (size_t i = 0; i < snapshot.size() && i < 64; i++) h = Hash(snapshot[i], h);
    return h;
  }

 private:
  std::map<std::string, int> counts_;
  std::unordered_map<std::string, std::vector<uint32_t>> positions_;
  std::vector<std::string> order_;
};

}  // namespace

int main(int argc, char** argv) {
  const double scale = ParseScale(argc, argv);
  const auto words = static_cast<uint32_t>(6e5 * scale);
  Rng rng;
  Index index;
  uint64_t check = 0;
  std::string sentence;
  for (uint32_t i = 0; i < words; i++) {
    std::string w = Word(rng);
    sentence += w;
    sentence += ' ';
    if (sentence.size() > 200) {  // a finished sentence: hashed and dropped
      check = Hash(sentence, check);
      sentence = std::string();
    }
    index.Add(std::move(w), i);
    if (i % 4096 == 4095) check += index.Trim();
  }
  check += index.Trim();
  std::printf("stl: words=%u checksum=%016llx\n", words, static_cast<unsigned long long>(check));
  return 0;
}
