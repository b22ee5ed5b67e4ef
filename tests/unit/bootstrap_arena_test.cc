#include "preload/bootstrap_arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace dw {
namespace {

TEST(BootstrapArenaTest, AlignedOwnedAndSized) {
  void* small = bootstrap::Allocate(24, 16);
  void* aligned = bootstrap::Allocate(100, 256);
  ASSERT_NE(small, nullptr);
  ASSERT_NE(aligned, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 16, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned) % 256, 0u);
  EXPECT_TRUE(bootstrap::Owns(small));
  EXPECT_EQ(bootstrap::SizeOf(aligned), 100u);
  memset(aligned, 0xff, 100);
  EXPECT_EQ(bootstrap::SizeOf(aligned), 100u);  // the header is outside the block
  int on_stack = 0;
  EXPECT_FALSE(bootstrap::Owns(&on_stack));
}

TEST(BootstrapArenaTest, OverflowFallsBackToMappedMemory) {
  // More than the static arena: later blocks come from mmap and are still recognised.
  void* last = nullptr;
  for (int i = 0; i < 20; ++i) {
    last = bootstrap::Allocate(32 * 1024, 16);
    ASSERT_NE(last, nullptr);
  }
  EXPECT_TRUE(bootstrap::Owns(last));
  EXPECT_EQ(bootstrap::SizeOf(last), 32u * 1024);
}

}  // namespace
}  // namespace dw
