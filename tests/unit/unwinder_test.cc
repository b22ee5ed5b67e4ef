// Tests of dw::Unwinder: the shim's own frames are dropped, and a capture is never cut short by
// them, however many there are. The "user's code" here is a run of functions placed in a
// section of their own, after .text; the "shim" is everything from the start of the executable
// up to that section, which includes Unwinder::Capture (linked in from the core) and the
// recursion that stands for the hook and the tracker. No LD_PRELOAD is needed.
#include "preload/unwinder.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <alloca.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <vector>

#include "preload/frame_rules.h"

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

// ---- The fast walk over cached frame rules gives exactly the loaded unwinder's frames ----

// One capture each way, from the same call instruction, so the user's frames are the same.
DW_TEST_SHIM uint32_t CaptureOneWay(int way, uintptr_t* frames, uint32_t depth) {
  uint32_t got =
      way == 0 ? g_unwinder->Capture(frames, depth) : g_unwinder->CaptureWithLibrary(frames, depth);
  asm volatile("" ::: "memory");
  return got;
}

struct BothWays {
  uintptr_t frames[2][dw::wire::kMaxDepth] = {};
  uint32_t count[2] = {};
  uint64_t fallbacks_before = 0;
  uint64_t fallbacks_after = 0;
};
BothWays* g_both = nullptr;

DW_TEST_USER void CaptureBothWays() {
  g_both->fallbacks_before = g_unwinder->fallbacks();
  static volatile int ways = 2;  // volatile: one call instruction for both, never unrolled
  for (int way = 0; way < ways; ++way) {
    g_both->count[way] = CaptureOneWay(way, g_both->frames[way], dw::wire::kMaxDepth);
  }
  g_both->fallbacks_after = g_unwinder->fallbacks();
  asm volatile("" ::: "memory");
}

DW_TEST_USER int CompareAndCapture(const void* left, const void* right) {
  if (g_both->count[0] == 0) CaptureBothWays();
  return *static_cast<const int*>(left) - *static_cast<const int*>(right);
}

// Through glibc's qsort: library code built without frame pointers.
DW_TEST_USER void ThroughQsort() {
  int keys[] = {2, 1};
  qsort(keys, 2, sizeof(keys[0]), CompareAndCapture);
  asm volatile("" ::: "memory");
}

// Through libstdc++ templates and a std::function.
DW_TEST_USER void ThroughStdFunction() {
  std::function<void()> call = [] { CaptureBothWays(); };
  std::vector<int> values = {3, 1, 2};
  std::sort(values.begin(), values.end(), [&](int a, int b) {
    if (g_both->count[0] == 0) call();
    return a < b;
  });
  asm volatile("" ::: "memory");
}

DW_TEST_USER void Recurse(int levels, void (*leaf)()) {
  if (levels > 0) {
    Recurse(levels - 1, leaf);
  } else {
    leaf();
  }
  asm volatile("" ::: "memory");
}

class FastWalkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(unwinder_.Init(reinterpret_cast<uintptr_t>(__executable_start),
                             reinterpret_cast<uintptr_t>(__start_dw_test_user)),
              dw::UnwindMethod::kNone);
    g_unwinder = &unwinder_;
    g_both = &both_;
  }
  void TearDown() override {
    g_unwinder = nullptr;
    g_both = nullptr;
  }
  // Both ways found the same, non-empty stack; `fast` says whether the fast walk did it alone.
  void ExpectSameFrames(bool fast) {
    ASSERT_GT(both_.count[1], 0u);
    EXPECT_EQ(std::vector<uintptr_t>(both_.frames[0], both_.frames[0] + both_.count[0]),
              std::vector<uintptr_t>(both_.frames[1], both_.frames[1] + both_.count[1]));
    EXPECT_TRUE(InUserCode(both_.frames[0][0]));
    if (fast) {
      EXPECT_EQ(both_.fallbacks_after, both_.fallbacks_before) << "the fast walk gave up";
    } else {
      EXPECT_GT(both_.fallbacks_after, both_.fallbacks_before) << "the fast walk went on";
    }
  }
  dw::Unwinder unwinder_;
  BothWays both_;
};

// Two callers of one function, called in turn from one place: below the function every frame
// is the same (same return addresses, same stack pointers), above it one return address
// differs. The fast walk reuses its last walk only where every word it read is unchanged, so
// each capture names its own caller.
DW_TEST_USER void MidLevel() {
  CaptureBothWays();
  asm volatile("" ::: "memory");
}
DW_TEST_USER void OuterA() {
  MidLevel();
  asm volatile("" ::: "memory");
}
DW_TEST_USER void OuterB() {
  MidLevel();
  asm volatile("nop" ::: "memory");  // not the same code as OuterA: never folded into one
}

TEST_F(FastWalkTest, ReusesTheLastWalkOnlyWhereNothingChanged) {
  static void (*volatile outers[2])() = {OuterA, OuterB};
  std::vector<uintptr_t> first_seen[2];
  for (int which : {0, 0, 1, 1, 0, 1, 0}) {
    SCOPED_TRACE(which);
    both_ = BothWays{};
    outers[which]();  // one call instruction for both callers
    ExpectSameFrames(/*fast=*/true);
    std::vector<uintptr_t> frames(both_.frames[0], both_.frames[0] + both_.count[0]);
    if (first_seen[which].empty()) first_seen[which] = frames;
    EXPECT_EQ(frames, first_seen[which]);
  }
  ASSERT_EQ(first_seen[0].size(), first_seen[1].size());
  ASSERT_GE(first_seen[0].size(), 4u);
  EXPECT_EQ(first_seen[0][1], first_seen[1][1]);  // in MidLevel, the same in both
  EXPECT_NE(first_seen[0][2], first_seen[1][2]);  // its caller
  EXPECT_EQ(first_seen[0][3], first_seen[1][3]);  // the one call site of both
}

// Random call paths, one after another, through frames of every kind the walk meets: plain
// ones (CFA from rsp), ones with alloca (CFA from rbp, at a stack pointer that varies), and
// glibc's qsort. Every capture is compared with libunwind's.
uint64_t g_random_state = 0x2545F4914F6CDD1Dull;
int g_levels_left = 0;

uint64_t NextRandom() {
  g_random_state ^= g_random_state >> 12;
  g_random_state ^= g_random_state << 25;
  g_random_state ^= g_random_state >> 27;
  return g_random_state * 0x2545F4914F6CDD1Dull;
}

DW_TEST_USER void RandomPath();

DW_TEST_USER int CompareAndDescend(const void* left, const void* right) {
  if (g_levels_left >= 0) RandomPath();
  return *static_cast<const int*>(left) - *static_cast<const int*>(right);
}

DW_TEST_USER void RandomPath() {
  if (g_levels_left-- <= 0) {
    CaptureBothWays();
    g_levels_left = -1;  // the comparator may be called again: capture once
    return;
  }
  switch (NextRandom() % 4) {
    case 0:
      RandomPath();
      break;
    case 1: {
      auto* scratch = static_cast<volatile char*>(alloca(16 + NextRandom() % 256));
      scratch[0] = 1;
      RandomPath();
      scratch[0] = 2;
      break;
    }
    case 2: {
      int keys[] = {2, 1};
      qsort(keys, 2, sizeof(keys[0]), CompareAndDescend);
      break;
    }
    default:
      RandomPath();  // another call site
      asm volatile("nop" ::: "memory");
      break;
  }
  asm volatile("" ::: "memory");
}

TEST_F(FastWalkTest, SameFramesOnRandomPaths) {
  for (int round = 0; round < 3000; ++round) {
    both_ = BothWays{};
    g_levels_left = static_cast<int>(NextRandom() % 30);
    RandomPath();
    ASSERT_GT(both_.count[1], 0u);
    ASSERT_EQ(std::vector<uintptr_t>(both_.frames[0], both_.frames[0] + both_.count[0]),
              std::vector<uintptr_t>(both_.frames[1], both_.frames[1] + both_.count[1]))
        << "round " << round;
    ASSERT_EQ(both_.fallbacks_after, both_.fallbacks_before);
  }
}

// Main thread, short enough that both walks reach the end of the stack (_start).
TEST_F(FastWalkTest, SameFramesToTheEndOfTheMainStack) {
  Recurse(5, ThroughQsort);
  ExpectSameFrames(/*fast=*/true);
  EXPECT_LT(both_.count[0], dw::wire::kMaxDepth) << "the stack's end was not reached";
}

TEST_F(FastWalkTest, SameFramesThroughLibstdcxx) {
  Recurse(3, ThroughStdFunction);
  ExpectSameFrames(/*fast=*/true);
}

// A thread's stack ends in clone3, whose return address is undefined.
TEST_F(FastWalkTest, SameFramesToTheEndOfAThreadStack) {
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, nullptr,
                [](void*) -> void* {
                  Recurse(2, ThroughQsort);
                  return nullptr;
                },
                nullptr),
            0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  ExpectSameFrames(/*fast=*/true);
  EXPECT_LT(both_.count[0], dw::wire::kMaxDepth);
}

// Deeper than the capture: both stop at the same depth.
TEST_F(FastWalkTest, SameFramesWhenTheStackIsDeeperThanTheCapture) {
  Recurse(80, CaptureBothWays);
  ExpectSameFrames(/*fast=*/true);
  EXPECT_EQ(both_.count[0], dw::wire::kMaxDepth);
}

// A signal frame has no rule the fast walk follows: libunwind takes the whole capture.
TEST_F(FastWalkTest, SignalFramesGoToTheLoadedUnwinder) {
  struct sigaction action = {};
  struct sigaction old = {};
  action.sa_handler = [](int) { CaptureBothWays(); };
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  raise(SIGUSR1);
  ASSERT_EQ(sigaction(SIGUSR1, &old, nullptr), 0);
  ExpectSameFrames(/*fast=*/false);
}

// At a function's first instruction the CFA is rsp + 8 and the return address is just below it.
TEST(FrameRuleTest, EntryRuleOfAFunction) {
  const dw::FrameRule rule = dw::FindFrameRule(reinterpret_cast<uintptr_t>(&CaptureBothWays));
  EXPECT_EQ(rule.kind, dw::FrameRule::kStep);
  EXPECT_FALSE(rule.cfa_from_rbp);
  EXPECT_EQ(rule.cfa_offset, 8);
  EXPECT_EQ(rule.ra_offset, -8);
  EXPECT_FALSE(rule.rbp_saved);
  // No CFI at all (a data address): not followed.
  static int data = 0;
  EXPECT_EQ(dw::FindFrameRule(reinterpret_cast<uintptr_t>(&data)).kind,
            dw::FrameRule::kUnsupported);
}

TEST(FrameRuleTest, PacksAndUnpacks) {
  dw::FrameRule rule;
  rule.kind = dw::FrameRule::kStep;
  rule.cfa_from_rbp = true;
  rule.rbp_saved = true;
  rule.cfa_offset = -(1 << 23);
  rule.rbp_offset = 2047;
  rule.ra_offset = -128;
  EXPECT_EQ(dw::FrameRule::Unpack(rule.Pack()), rule);
  rule.cfa_offset = 1 << 23;  // does not fit: never packed as a different offset
  EXPECT_EQ(dw::FrameRule::Unpack(rule.Pack()).kind, dw::FrameRule::kUnsupported);
}

TEST(FrameRuleCacheTest, RulesOfAnotherEpochAreNeverReturned) {
  dw::FrameRuleCache cache;
  ASSERT_TRUE(cache.Init(4));
  uint64_t packed = 0;
  cache.Insert(0x401000, 0, 0x1234);
  ASSERT_TRUE(cache.Lookup(0x401000, 0, &packed));
  EXPECT_EQ(packed, 0x1234u);
  EXPECT_FALSE(cache.Lookup(0x401000, 1, &packed));
  EXPECT_FALSE(cache.Lookup(0x401000, 1 << 16, &packed));  // same low bits in the key
  cache.Insert(0x401000, 1, 0x5678);
  ASSERT_TRUE(cache.Lookup(0x401000, 1, &packed));
  EXPECT_EQ(packed, 0x5678u);
  cache.ReleaseMemory();
}

// Far more addresses than slots: every hit is the rule of its own address.
TEST(FrameRuleCacheTest, AFullCacheMissesButNeverMixesUpAddresses) {
  dw::FrameRuleCache cache;
  ASSERT_TRUE(cache.Init(4));
  int hits = 0;
  for (uintptr_t ip = 0x400000; ip < 0x400000 + 200; ++ip) cache.Insert(ip, 7, ip & 0xffff);
  for (uintptr_t ip = 0x400000; ip < 0x400000 + 200; ++ip) {
    uint64_t packed = 0;
    if (cache.Lookup(ip, 7, &packed)) {
      ++hits;
      EXPECT_EQ(packed, ip & 0xffff);
    }
  }
  EXPECT_EQ(hits, 16);  // each slot holds one address
  cache.ReleaseMemory();
}

}  // namespace
