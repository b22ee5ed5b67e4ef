#include "preload/bootstrap_arena.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>

namespace dw::bootstrap {

using detail::g_arena;
using detail::g_overflow_count;
using detail::kArenaBytes;

namespace {

constexpr size_t kHeaderBytes = 16;  // keeps the default alignment of malloc

std::atomic<size_t> g_used{0};

// Overflow blocks are mmap'd one by one and recorded here, so Owns() stays exact.
constexpr int kMaxOverflowBlocks = 64;
std::atomic<uintptr_t> g_overflow_begin[kMaxOverflowBlocks];
std::atomic<size_t> g_overflow_size[kMaxOverflowBlocks];

struct Header {
  size_t size;
  size_t padding;
};

void* WriteHeader(char* block_start, size_t size) {
  auto* header = reinterpret_cast<Header*>(block_start - kHeaderBytes);
  header->size = size;
  return block_start;
}

}  // namespace

void* Allocate(size_t size, size_t alignment) {
  if (size > kArenaBytes || alignment > kArenaBytes) return nullptr;
  // glibc's memalign rounds an alignment that is not a power of two up to the next one.
  size_t power = kHeaderBytes;
  while (power < alignment) power <<= 1;
  alignment = power;
  size_t needed = size + kHeaderBytes + alignment;
  size_t start = g_used.fetch_add(needed, std::memory_order_relaxed);
  if (start + needed <= kArenaBytes) {
    auto base = reinterpret_cast<uintptr_t>(g_arena) + start + kHeaderBytes;
    uintptr_t aligned = (base + alignment - 1) & ~(uintptr_t{alignment} - 1);
    return WriteHeader(reinterpret_cast<char*>(aligned), size);
  }
  int slot = g_overflow_count.fetch_add(1, std::memory_order_relaxed);
  if (slot >= kMaxOverflowBlocks) return nullptr;
  void* mapped = mmap(nullptr, needed, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  g_overflow_size[slot].store(needed, std::memory_order_relaxed);
  g_overflow_begin[slot].store(reinterpret_cast<uintptr_t>(mapped), std::memory_order_release);
  uintptr_t base = reinterpret_cast<uintptr_t>(mapped) + kHeaderBytes;
  uintptr_t aligned = (base + alignment - 1) & ~(uintptr_t{alignment} - 1);
  return WriteHeader(reinterpret_cast<char*>(aligned), size);
}

bool detail::OwnsOverflowBlock(uintptr_t address) {
  int count = g_overflow_count.load(std::memory_order_acquire);
  if (count > kMaxOverflowBlocks) count = kMaxOverflowBlocks;
  for (int i = 0; i < count; ++i) {
    uintptr_t begin = g_overflow_begin[i].load(std::memory_order_acquire);
    if (begin != 0 && address >= begin &&
        address < begin + g_overflow_size[i].load(std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

size_t SizeOf(const void* block) {
  return reinterpret_cast<const Header*>(static_cast<const char*>(block) - kHeaderBytes)->size;
}

}  // namespace dw::bootstrap
