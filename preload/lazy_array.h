// lazy_array.h: a fixed-capacity array indexed by site id whose memory is mapped chunk by chunk,
// the first time an index in a chunk is used.
//
// Per-site tables (counters, stack records, detail masks) are sized for DRIFTWATCH_MAX_SITES, but
// site ids are handed out densely from 1, so most programs use a small prefix. Mapping the whole
// capacity up front costs address space that `ulimit -v` counts (about 90 MB at the default of
// 2^18 sites); mapping a chunk when an id first lands in it keeps the reservation proportional
// to the sites in use. The directory of chunk pointers is mapped at Init; chunk 0 is mapped at
// Init too, so index 0 (kNoSite, "unattributed") is always usable as a fallback.
//
// Thread-safety: lock-free. Get() and Ensure() may race; two threads mapping the same chunk
// publish one mapping with a CAS and the loser unmaps its own. Release() must not race with
// anything. Allocation: none from the heap; Init() and a first Ensure() in a chunk map pages
// (a system call, once per chunk). Safe inside a hook: Get() and Ensure(), yes; Init() and
// Release(), no.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace dw {

class LazyChunks {
 public:
  // `capacity` elements of `element_size` bytes (zero-filled), 2^chunk_bits per chunk.
  bool Init(size_t element_size, uint32_t capacity, uint32_t chunk_bits);
  // Unmaps the directory and every chunk; the object is as before Init().
  void Release();

  // The element's memory if its chunk is mapped, else nullptr (reads as "all zero").
  void* Get(uint32_t index) const {
    if (index >= capacity_) return nullptr;
    // Chunk 0 holds the oldest ids, often the hottest: reached without the directory's load,
    // which on every malloc and free was a dependent cache miss of its own.
    if (index <= chunk_mask_ && first_chunk_ != nullptr)
      return first_chunk_ + index * element_size_;
    char* chunk = directory_[index >> chunk_bits_].load(std::memory_order_acquire);
    if (chunk == nullptr) return nullptr;
    return chunk + (index & chunk_mask_) * element_size_;
  }
  // As Get(), mapping the chunk first if needed. nullptr if index >= capacity or mapping failed.
  void* Ensure(uint32_t index) {
    void* element = Get(index);
    return element != nullptr || index >= capacity_ ? element : MapChunkOf(index);
  }
  // Gives every mapped chunk's pages back to the kernel: all elements read as zero again.
  void DiscardAll();

  uint32_t capacity() const { return capacity_; }
  // Bytes mapped now (directory and chunks); for tests and the start-up reservation check.
  size_t mapped_bytes() const;

 private:
  void* MapChunkOf(uint32_t index);
  size_t ChunkBytes(uint32_t chunk) const;
  uint32_t chunk_count() const { return (capacity_ + chunk_mask_) >> chunk_bits_; }

  std::atomic<char*>* directory_ = nullptr;
  char* first_chunk_ = nullptr;  // directory_[0], set by Init() (before any other thread runs)
  size_t element_size_ = 0;
  uint32_t capacity_ = 0;
  uint32_t chunk_bits_ = 0;
  uint32_t chunk_mask_ = 0;
};

// Typed view of LazyChunks for trivially constructible elements (zero bytes are a valid T).
template <typename T, uint32_t kChunkBits>
class LazyArray {
 public:
  bool Init(uint32_t capacity) { return chunks_.Init(sizeof(T), capacity, kChunkBits); }
  void Release() { chunks_.Release(); }
  T* Get(uint32_t index) const { return static_cast<T*>(chunks_.Get(index)); }
  T* Ensure(uint32_t index) { return static_cast<T*>(chunks_.Ensure(index)); }
  void DiscardAll() { chunks_.DiscardAll(); }
  uint32_t capacity() const { return chunks_.capacity(); }
  size_t mapped_bytes() const { return chunks_.mapped_bytes(); }

 private:
  LazyChunks chunks_;
};

}  // namespace dw
