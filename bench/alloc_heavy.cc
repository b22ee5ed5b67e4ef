// alloc_heavy: a fixed amount of allocation-heavy work, to measure what a heap tracker costs.
//
// Several threads each run the same mix, driven by a deterministic per-thread PRNG:
//   * a slot table of live blocks: malloc / calloc / realloc (grow and shrink) / free of mixed
//     sizes (mostly small, some medium, a few large), so blocks of many ages are live at once;
//   * new / delete of small objects and new[] / delete[] of arrays;
//   * std containers: std::string building, std::vector growth, std::map insert / erase,
//     std::unordered_map with rehashing.
// Every block is written and read back, and the program prints a checksum of the work, which
// must be the same with or without a tracker preloaded (bench/compare_overhead checks it).
//
// Usage: bench_alloc_heavy [--threads N] [--scale X]
//   --threads N  worker threads (default 4)
//   --scale X    multiplies the amount of work (default 1.0: 300 000 rounds, about 1.2 s wall
//                with 4 threads on the 2-core development machine, without any tracker)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

class Rng {  // xorshift64*: deterministic, allocation-free
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
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

// 80 % 8-128 B, 17 % 128 B-4 KiB, 3 % 4-64 KiB.
size_t PickSize(Rng& rng) {
  uint64_t bucket = rng.Below(100);
  if (bucket < 80) return 8 + rng.Below(121);
  if (bucket < 97) return 128 + rng.Below(4096 - 128);
  return 4096 + rng.Below(60 * 1024);
}

// Touches the first and last bytes (and one in between) so the allocation is really used.
uint64_t Touch(unsigned char* p, size_t size, uint64_t tag) {
  p[0] = static_cast<unsigned char>(tag);
  p[size / 2] = static_cast<unsigned char>(tag >> 8);
  p[size - 1] = static_cast<unsigned char>(tag >> 16);
  return p[0] + p[size / 2] + p[size - 1] + size;
}

struct Node {
  uint64_t key;
  double weight;
  Node* next;
};

struct Slot {
  unsigned char* data = nullptr;
  size_t size = 0;
};

// One thread's share of the work. Returns its checksum.
uint64_t Work(uint64_t thread_index, uint64_t rounds) {
  Rng rng(thread_index + 1);
  uint64_t sum = 0;
  std::vector<Slot> slots(2048);

  for (uint64_t round = 0; round < rounds; ++round) {
    // 1. The C allocator on a table of live blocks.
    for (int op = 0; op < 64; ++op) {
      Slot& slot = slots[rng.Below(slots.size())];
      uint64_t action = rng.Below(10);
      if (slot.data == nullptr) {
        size_t size = PickSize(rng);
        void* p = action < 2 ? std::calloc(1, size) : std::malloc(size);
        if (p == nullptr) std::abort();
        slot.data = static_cast<unsigned char*>(p);
        slot.size = size;
        sum += Touch(slot.data, size, round + op);
      } else if (action < 3) {
        size_t size = action == 0 ? slot.size / 2 + 1 : slot.size + PickSize(rng);
        void* p = std::realloc(slot.data, size);
        if (p == nullptr) std::abort();
        slot.data = static_cast<unsigned char*>(p);
        slot.size = size;
        sum += Touch(slot.data, size, round ^ op);
      } else {
        sum += slot.data[slot.size - 1];
        std::free(slot.data);
        slot.data = nullptr;
        slot.size = 0;
      }
    }

    // 2. new / delete: a short linked list, and an array.
    Node* head = nullptr;
    for (int i = 0; i < 24; ++i) head = new Node{rng.Next(), i * 0.5, head};
    while (head != nullptr) {
      Node* next = head->next;
      sum += head->key & 0xff;
      delete head;
      head = next;
    }
    size_t n = 16 + rng.Below(512);
    std::unique_ptr<uint32_t[]> array(new uint32_t[n]);
    for (size_t i = 0; i < n; ++i) array[i] = static_cast<uint32_t>(i * round);
    sum += array[n - 1];

    // 3. std containers.
    std::string text;
    for (int i = 0; i < 12; ++i) {
      text += "item-";
      text += std::to_string(rng.Below(1'000'000));
      text += ';';
    }
    sum += text.size();

    std::vector<uint64_t> values;
    for (size_t i = 0, count = 8 + rng.Below(200); i < count; ++i) values.push_back(rng.Next());
    sum += values.size() + (values.back() & 0xf);

    if (round % 8 == 0) {
      std::map<uint64_t, std::string> ordered;
      for (int i = 0; i < 32; ++i) ordered.emplace(rng.Below(64), std::string(20 + i, 'x'));
      for (int i = 0; i < 16; ++i) ordered.erase(rng.Below(64));
      for (const auto& [key, value] : ordered) sum += key + value.size();

      std::unordered_map<uint64_t, std::vector<int>> groups;
      for (int i = 0; i < 48; ++i) groups[rng.Below(1000)].push_back(i);
      sum += groups.size();
    }
  }

  for (Slot& slot : slots) std::free(slot.data);
  return sum;
}

[[noreturn]] void Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--threads N (1..256)] [--scale X (0 < X <= 1000)]\n", argv0);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  long threads = 4;
  double scale = 1.0;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      threads = std::strtol(argv[++i], nullptr, 10);
    } else if (arg == "--scale" && i + 1 < argc) {
      scale = std::strtod(argv[++i], nullptr);
    } else {
      Usage(argv[0]);
    }
  }
  if (threads < 1 || threads > 256 || !(scale > 0 && scale <= 1000)) Usage(argv[0]);

  // The total work is fixed and split between the threads, so the checksum does not depend on
  // timing, and more threads means more contention on the same amount of work.
  constexpr uint64_t kRoundsAtScale1 = 300'000;
  const uint64_t total_rounds = static_cast<uint64_t>(kRoundsAtScale1 * scale);
  std::vector<uint64_t> sums(threads);
  std::vector<std::thread> workers;
  for (long t = 0; t < threads; ++t) {
    uint64_t rounds = total_rounds / threads + (static_cast<uint64_t>(t) < total_rounds % threads);
    workers.emplace_back([t, rounds, &sums] { sums[t] = Work(t, rounds); });
  }
  for (std::thread& worker : workers) worker.join();

  uint64_t checksum = 0;
  for (uint64_t s : sums) checksum = checksum * 1'000'003 + s;
  std::printf("alloc_heavy: threads=%ld rounds=%llu checksum=%016llx\n", threads,
              static_cast<unsigned long long>(total_rounds),
              static_cast<unsigned long long>(checksum));
  return 0;
}
