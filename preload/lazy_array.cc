#include "preload/lazy_array.h"

#include "preload/os.h"

namespace dw {

bool LazyChunks::Init(size_t element_size, uint32_t capacity, uint32_t chunk_bits) {
  element_size_ = element_size;
  capacity_ = capacity;
  chunk_bits_ = chunk_bits;
  chunk_mask_ = (1u << chunk_bits) - 1;
  directory_ = static_cast<std::atomic<char*>*>(
      os::MapPages(size_t{chunk_count()} * sizeof(std::atomic<char*>)));
  if (directory_ == nullptr) {
    capacity_ = 0;
    return false;
  }
  // Chunk 0 up front: index 0 is every caller's fallback when a later chunk cannot be mapped.
  if (capacity_ > 0 && MapChunkOf(0) == nullptr) {
    Release();
    return false;
  }
  first_chunk_ = directory_[0].load(std::memory_order_relaxed);
  return true;
}

size_t LazyChunks::ChunkBytes(uint32_t chunk) const {
  // The last chunk holds only what is left of the capacity.
  const uint32_t first = chunk << chunk_bits_;
  const uint32_t elements =
      capacity_ - first < chunk_mask_ + 1 ? capacity_ - first : chunk_mask_ + 1;
  return size_t{elements} * element_size_;
}

void* LazyChunks::MapChunkOf(uint32_t index) {
  const uint32_t chunk = index >> chunk_bits_;
  const size_t bytes = ChunkBytes(chunk);
  auto* mapped = static_cast<char*>(os::MapPages(bytes));
  if (mapped == nullptr) return Get(index);  // another thread may have mapped it meanwhile
  char* expected = nullptr;
  if (!directory_[chunk].compare_exchange_strong(expected, mapped, std::memory_order_acq_rel)) {
    os::UnmapPages(mapped, bytes);  // lost the race: use the winner's chunk
  }
  return Get(index);
}

void LazyChunks::DiscardAll() {
  for (uint32_t chunk = 0; chunk < chunk_count(); ++chunk) {
    char* mapped = directory_[chunk].load(std::memory_order_acquire);
    if (mapped != nullptr) os::DiscardPages(mapped, ChunkBytes(chunk));
  }
}

size_t LazyChunks::mapped_bytes() const {
  if (directory_ == nullptr) return 0;
  size_t bytes = size_t{chunk_count()} * sizeof(std::atomic<char*>);
  for (uint32_t chunk = 0; chunk < chunk_count(); ++chunk) {
    if (directory_[chunk].load(std::memory_order_acquire) != nullptr) bytes += ChunkBytes(chunk);
  }
  return bytes;
}

void LazyChunks::Release() {
  if (directory_ != nullptr) {
    for (uint32_t chunk = 0; chunk < chunk_count(); ++chunk) {
      os::UnmapPages(directory_[chunk].load(std::memory_order_relaxed), ChunkBytes(chunk));
    }
    os::UnmapPages(directory_, size_t{chunk_count()} * sizeof(std::atomic<char*>));
  }
  directory_ = nullptr;
  first_chunk_ = nullptr;
  capacity_ = 0;
}

}  // namespace dw
