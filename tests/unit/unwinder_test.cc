// Tests of dw::Unwinder: the shim's own frames are dropped, and a capture is never cut short by
// them, however many there are. The "user's code" here is a run of functions placed in a
// section of their own, after .text; the "shim" is everything from the start of the executable
// up to that section, which includes Unwinder::Capture (linked in from the core) and the
// recursion that stands for the hook and the tracker. No LD_PRELOAD is needed.
#include "preload/unwinder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "preload/wire_format.h"

extern "C" const char __executable_start[];
extern "C" const char __start_dw_test_user[];
extern "C" const char __stop_dw_test_user[];

namespace {

// noipa: no inlining and no specialised clones, which gcc would place outside the section.
#define DW_TEST_SHIM __attribute__((noipa))
#define DW_TEST_USER __attribute__((noipa, section("dw_test_user")))

dw::Unwinder* g_unwinder = nullptr;

// `levels` shim frames above the capture, like hook -> tracker -> CaptureSite.
DW_TEST_SHIM uint32_t ShimFrames(int levels, uintptr_t* frames, uint32_t depth) {
  uint32_t got =
      levels > 0 ? ShimFrames(levels - 1, frames, depth) : g_unwinder->Capture(frames, depth);
  asm volatile("" ::: "memory");  // keeps the recursion a real call, not a tail call
  return got;
}

// The user's code: `levels` frames of it below the shim.
DW_TEST_USER uint32_t UserFrames(int levels, int shim_levels, uintptr_t* frames, uint32_t depth) {
  uint32_t got = levels > 0 ? UserFrames(levels - 1, shim_levels, frames, depth)
                            : ShimFrames(shim_levels, frames, depth);
  asm volatile("" ::: "memory");
  return got;
}

bool InUserCode(uintptr_t address) {
  return address > reinterpret_cast<uintptr_t>(__start_dw_test_user) &&
         address <= reinterpret_cast<uintptr_t>(__stop_dw_test_user);
}

TEST(UnwinderTest, DropsShimFramesAndIsNeverCutShortByThem) {
  dw::Unwinder unwinder;
  ASSERT_LT(reinterpret_cast<uintptr_t>(__executable_start),
            reinterpret_cast<uintptr_t>(__start_dw_test_user));
  ASSERT_NE(unwinder.Init(reinterpret_cast<uintptr_t>(__executable_start),
                          reinterpret_cast<uintptr_t>(__start_dw_test_user)),
            dw::UnwindMethod::kNone);
  g_unwinder = &unwinder;
  constexpr uint32_t kDepth = 8;
  // From few shim frames to more than the unwinder allows for at first, and back: every capture
  // starts in the user's code and has the full depth of it.
  // 6 levels are 8 shim frames with Capture's and the first ShimFrames call: the most the
  // unwinder ever allows for (kMaxShimFrames), from 2 at first.
  static_assert(dw::Unwinder::kMaxShimFrames == 8);
  for (int shim_levels : {0, 1, 6, 2}) {
    SCOPED_TRACE(shim_levels);
    uintptr_t frames[dw::wire::kMaxDepth] = {};
    const uint32_t got = UserFrames(20, shim_levels, frames, kDepth);
    ASSERT_EQ(got, kDepth);
    for (uint32_t i = 0; i < got; ++i) {
      EXPECT_TRUE(InUserCode(frames[i])) << "frame " << i << " is not the user's";
    }
    // The same call path gives the same stack again (the site must not split).
    uintptr_t again[dw::wire::kMaxDepth] = {};
    ASSERT_EQ(UserFrames(20, shim_levels, again, kDepth), kDepth);
    // The innermost frame's return address differs by call site inside UserFrames only if the
    // path differs; both captures took the same path.
    EXPECT_EQ(std::vector<uintptr_t>(frames, frames + kDepth),
              std::vector<uintptr_t>(again, again + kDepth));
  }
  g_unwinder = nullptr;
}

}  // namespace
