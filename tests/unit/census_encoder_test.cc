// census_encoder_test.cc: what the shim encodes, read back by the collector's own decoder
// (report/census_stream.h), so both halves of the protocol are checked against each other.
#include "preload/census_encoder.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include "preload/site_counters.h"
#include "preload/stack_table.h"
#include "report/decode/census_stream.h"

namespace dw {
namespace {

class CensusEncoderTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stacks_.Init(1u << 20, 16));
    ASSERT_TRUE(heap_.Init(1u << 20));
    CensusSources sources;
    sources.stacks = &stacks_;
    sources.kinds[static_cast<uint32_t>(wire::Kind::kHeap)].counters = &heap_;
    ASSERT_TRUE(encoder_.Init(sources, 100, 16));
    encoder_.NewConnection();
  }

  uint32_t Site(uintptr_t seed) {
    const uintptr_t frames[3] = {0x401000 + seed, 0x402000 + seed, 0x403000 + seed};
    return stacks_.Intern(frames, 3);
  }

  // Encodes one census and feeds everything produced so far to the decoder.
  void EncodeAndDecode(bool final = false) {
    ASSERT_TRUE(encoder_.AppendCensus(out_, final, 0));
    absl::Status fed = decoder_.Feed(std::string_view(out_.data(), out_.size()));
    ASSERT_TRUE(fed.ok()) << fed;
    out_.Clear();
  }

  StackTable stacks_;
  SiteCounters heap_;
  CensusEncoder encoder_;
  os::PageBuffer out_;
  report::CensusStreamDecoder decoder_;
};

TEST_F(CensusEncoderTest, SitesAndCountersRoundTripThroughTheCollectorsDecoder) {
  ASSERT_TRUE(encoder_.AppendHello(out_));
  const uint32_t leak = Site(1);
  const uint32_t churn = Site(2);
  for (int i = 0; i < 10; ++i) heap_.Acquire(leak, 100);
  for (int i = 0; i < 4; ++i) heap_.Acquire(churn, 8);
  for (int i = 0; i < 4; ++i) heap_.Release(churn, 8);
  EncodeAndDecode();
  heap_.Acquire(leak, 100);
  EncodeAndDecode(/*final=*/true);

  ASSERT_TRUE(decoder_.hello().has_value());
  EXPECT_EQ(decoder_.hello()->identity.pid, static_cast<uint32_t>(getpid()));
  ASSERT_EQ(decoder_.sites().size(), 2u);
  EXPECT_EQ(decoder_.sites().at(leak).return_addresses[0], 0x401001u);
  std::vector<report::Census> censuses = decoder_.TakeCensuses();
  ASSERT_EQ(censuses.size(), 2u);
  EXPECT_EQ(censuses[0].sequence, 0u);
  EXPECT_EQ(censuses[1].sequence, 1u);
  EXPECT_TRUE(censuses[1].final);
  EXPECT_TRUE(decoder_.saw_final());
  const auto& heap = censuses[1].counters[static_cast<uint32_t>(wire::Kind::kHeap)];
  EXPECT_EQ(heap.at(leak).acquired, 11u);
  EXPECT_EQ(heap.at(leak).acquired_bytes, 1100u);
}

TEST_F(CensusEncoderTest, NewConnectionDefinesEverySiteAgain) {
  ASSERT_TRUE(encoder_.AppendHello(out_));
  const uint32_t site = Site(7);
  heap_.Acquire(site, 64);
  EncodeAndDecode();
  // A collector that connects anew has seen nothing: a second decoder stands for it.
  encoder_.NewConnection();
  report::CensusStreamDecoder fresh;
  ASSERT_TRUE(encoder_.AppendHello(out_));
  ASSERT_TRUE(encoder_.AppendCensus(out_, false, 3));
  absl::Status fed = fresh.Feed(std::string_view(out_.data(), out_.size()));
  ASSERT_TRUE(fed.ok()) << fed;
  EXPECT_TRUE(fresh.sites().contains(site));
  std::vector<report::Census> censuses = fresh.TakeCensuses();
  ASSERT_EQ(censuses.size(), 1u);
  EXPECT_EQ(censuses[0].sequence, 0u);
  EXPECT_EQ(censuses[0].counters[0].at(site).acquired, 1u);
}

TEST_F(CensusEncoderTest, CountersOfManySitesSpanSeveralRecords) {
  ASSERT_TRUE(encoder_.AppendHello(out_));
  constexpr uint32_t kSites = 70000;  // more than one Counters record carries
  for (uintptr_t seed = 1; seed <= kSites; ++seed) heap_.Acquire(Site(seed * 16), 8);
  ASSERT_TRUE(encoder_.AppendCensus(out_, false, 0));
  // Each record stays far below the collector's limit, whatever the number of sites.
  int counters_records = 0;
  for (size_t at = 0; at < out_.size();) {
    wire::RecordHeader header;
    memcpy(&header, out_.data() + at, sizeof(header));
    if (header.type == static_cast<uint32_t>(wire::RecordType::kCounters)) {
      ++counters_records;
      EXPECT_LE(header.length, sizeof(wire::CountersHeader) + 65536 * sizeof(wire::SiteCounter));
    }
    at += sizeof(header) + header.length;
  }
  EXPECT_EQ(counters_records, 2);
  absl::Status fed = decoder_.Feed(std::string_view(out_.data(), out_.size()));
  ASSERT_TRUE(fed.ok()) << fed;
  const std::vector<report::Census> censuses = decoder_.TakeCensuses();
  ASSERT_EQ(censuses.size(), 1u);
  EXPECT_EQ(censuses[0].counters[0].size(), kSites);
}

// Counter entries in the Counters records of an encoded census.
size_t CounterEntries(const os::PageBuffer& out) {
  size_t entries = 0;
  for (size_t at = 0; at < out.size();) {
    wire::RecordHeader header;
    memcpy(&header, out.data() + at, sizeof(header));
    if (header.type == static_cast<uint32_t>(wire::RecordType::kCounters)) {
      wire::CountersHeader counters;
      memcpy(&counters, out.data() + at + sizeof(header), sizeof(counters));
      entries += counters.count;
    }
    at += sizeof(header) + header.length;
  }
  return entries;
}

// After a connection's first census, a census reads only the sites that changed since the last
// one: quiet sites cost nothing, and a change made at any time is sent by the next census.
TEST_F(CensusEncoderTest, LaterCensusesCarryOnlyTheSitesThatChanged) {
  ASSERT_TRUE(encoder_.AppendHello(out_));
  std::vector<uint32_t> sites;
  for (uintptr_t seed = 1; seed <= 5000; ++seed) sites.push_back(Site(seed * 16));
  for (uint32_t site : sites) heap_.Acquire(site, 8);
  ASSERT_TRUE(encoder_.AppendCensus(out_, false, 0));
  EXPECT_EQ(CounterEntries(out_), 5000u);
  ASSERT_TRUE(decoder_.Feed(std::string_view(out_.data(), out_.size())).ok());
  out_.Clear();
  heap_.Acquire(sites[10], 8);
  heap_.Release(sites[4000], 8);
  heap_.Acquire(sites[4999], 8);
  ASSERT_TRUE(encoder_.AppendCensus(out_, false, 0));
  EXPECT_EQ(CounterEntries(out_), 3u);
  ASSERT_TRUE(decoder_.Feed(std::string_view(out_.data(), out_.size())).ok());
  out_.Clear();
  ASSERT_TRUE(encoder_.AppendCensus(out_, false, 0));
  EXPECT_EQ(CounterEntries(out_), 0u);
  ASSERT_TRUE(decoder_.Feed(std::string_view(out_.data(), out_.size())).ok());
  out_.Clear();
  heap_.Acquire(sites[10], 8);
  EncodeAndDecode();
  const std::vector<report::Census> censuses = decoder_.TakeCensuses();
  ASSERT_EQ(censuses.size(), 4u);
  const auto& heap = censuses[3].counters[static_cast<uint32_t>(wire::Kind::kHeap)];
  EXPECT_EQ(heap.at(sites[10]).acquired, 3u);
  EXPECT_EQ(heap.at(sites[4000]).released, 1u);
  EXPECT_EQ(heap.at(sites[4999]).acquired, 2u);
  EXPECT_EQ(heap.at(sites[1]).acquired, 1u);
}

// The first census of a new connection reads every site, changed since the last census or not:
// the new collector was sent nothing yet.
TEST_F(CensusEncoderTest, ANewConnectionReadsEverySiteOnceWhateverChanged) {
  ASSERT_TRUE(encoder_.AppendHello(out_));
  const uint32_t quiet = Site(1);
  const uint32_t busy = Site(2);
  heap_.Acquire(quiet, 8);
  heap_.Acquire(busy, 8);
  EncodeAndDecode();
  heap_.Acquire(busy, 8);
  encoder_.NewConnection();
  report::CensusStreamDecoder fresh;
  ASSERT_TRUE(encoder_.AppendHello(out_));
  ASSERT_TRUE(encoder_.AppendCensus(out_, false, 0));
  EXPECT_EQ(CounterEntries(out_), 2u);  // the quiet site too: this collector never saw it
  ASSERT_TRUE(fresh.Feed(std::string_view(out_.data(), out_.size())).ok());
  const std::vector<report::Census> censuses = fresh.TakeCensuses();
  ASSERT_EQ(censuses.size(), 1u);
  EXPECT_EQ(censuses[0].counters[0].at(quiet).acquired, 1u);
  EXPECT_EQ(censuses[0].counters[0].at(busy).acquired, 2u);
}

// A thread stopped in the middle of StackTable::Intern (a long signal handler, a debugger, CPU
// throttling) holds an id that is handed out but not written. Its definition and its counters
// must wait for it, and everything else must go on; the collector must never see counters of a
// site it was not given.
sem_t g_release_handler;
std::atomic<bool> g_in_handler{false};
void HoldThread(int) {
  g_in_handler.store(true);
  while (sem_wait(&g_release_handler) != 0) {
  }
  g_in_handler.store(false);
}

TEST_F(CensusEncoderTest, AStackStillBeingWrittenHoldsBackOnlyItself) {
  ASSERT_EQ(sem_init(&g_release_handler, 0, 0), 0);
  struct sigaction action {};
  action.sa_handler = HoldThread;
  ASSERT_EQ(sigaction(SIGUSR1, &action, nullptr), 0);
  std::atomic<bool> stop{false};
  std::thread interning([&] {
    for (uintptr_t seed = 1000; !stop.load(std::memory_order_relaxed); ++seed) {
      heap_.Acquire(Site(seed), 16);
    }
  });
  // Some stacks first, so that there are others to be held back (or not).
  while (stacks_.end_id() < 100) {
  }
  // Interrupt the thread until it is caught between taking an id and writing the stack.
  uint32_t pending = 0;
  for (int attempt = 0; attempt < 200000 && pending == 0; ++attempt) {
    pthread_kill(interning.native_handle(), SIGUSR1);
    while (!g_in_handler.load()) {
    }
    const uint32_t end = stacks_.end_id();
    for (uint32_t id = end > 8 ? end - 8 : 1; id < end; ++id) {
      if (!stacks_.Published(id)) pending = id;
    }
    if (pending == 0) {
      sem_post(&g_release_handler);
      while (g_in_handler.load()) {
      }
    }
  }
  ASSERT_NE(pending, 0u) << "never caught the thread inside Intern";

  ASSERT_TRUE(encoder_.AppendHello(out_));
  for (int census = 0; census < 6; ++census) EncodeAndDecode();  // more than any grace period
  EXPECT_FALSE(decoder_.sites().contains(pending));
  EXPECT_GE(decoder_.sites().size(), 1u) << "the other stacks were held back too";

  sem_post(&g_release_handler);  // the stack is written, and counted at once
  while (g_in_handler.load()) {
  }
  stop.store(true);
  interning.join();
  EncodeAndDecode();
  EXPECT_TRUE(decoder_.sites().contains(pending));
  const std::vector<report::Census> censuses = decoder_.TakeCensuses();
  EXPECT_EQ(censuses.back().counters[0].at(pending).acquired, 1u);
  signal(SIGUSR1, SIG_DFL);
}

}  // namespace
}  // namespace dw
