// census_encoder_test: a key frame decodes back to the state it was made from, and the raw bytes
// that followed it decode on top of it exactly as they did on the whole stream
// (report/decode/census_encoder.h). Also prints the key frame's size and encoding time at 10k
// and 100k sites (the cost `collect --state` pays per rolled segment).
#include "report/decode/census_encoder.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "report/decode/census_stream.h"
#include "tests/report/census_stream_builder.h"

namespace dw::report {
namespace {

using testing::StreamBuilder;
using testing::TestModule;

std::string SiteDefWithGeneration(uint32_t id, std::vector<uint64_t> frames, uint16_t generation) {
  wire::SiteDef def{id, static_cast<uint16_t>(frames.size()), generation};
  std::string payload = StreamBuilder::Bytes(def);
  for (uint64_t frame : frames) payload += StreamBuilder::Bytes(frame);
  return payload;
}

wire::SiteCounter Counter(uint32_t site, uint64_t acquired, uint64_t released,
                          uint32_t detail = 0) {
  return {site, detail, acquired, released, acquired * 32, released * 32};
}

// Three censuses: modules with a build id and a deleted file; a dlclose (a second list with an
// unloaded mapping) and a site defined after it; a sequence gap; limits and thread states.
std::vector<std::string> ThreeCensuses() {
  const std::vector<TestModule> first = {
      {0x400000, 0x401000, 0, wire::kModuleRead | wire::kModuleExec, "/bin/service"},
      {0x7f0000, 0x7f1000, 0, wire::kModuleRead | wire::kModuleExec, "/lib/plugin.so (deleted)"}};
  std::vector<TestModule> second = first;
  second[1].flags |= wire::kModuleUnloaded | (1u << wire::kModuleUnloadShift);
  std::vector<std::string> parts;
  StreamBuilder b;
  b.Hello(4242, 1, "/bin/service", 250);
  b.Begin(0, 1'000'000, 8 << 20, 5, 3)
      .Modules(first, 1u | (0u << 16))
      .BuildIds({{0, std::string("\x01\x02\xab\xcd", 4)}})
      .Site(1, {0x400100, 0x400200})
      .Site(2, {0x7f0100})
      .Counters(wire::Kind::kHeap, {Counter(1, 10, 2), Counter(2, 5, 5), Counter(0, 1, 0)})
      .Counters(wire::Kind::kFds, {Counter(2, 3, 1, wire::kFdSocketInet)})
      .Limits(wire::Limits{1024, 4096, 0, 0, 0, 1 << 30, 1ull << 33, 0})
      .ThreadStates({{wire::ThreadSiteState{1, 1, 2, 0, 0, 0, 70'000, 1, 0}, "futex_wait_queue"}})
      .End(0);
  parts.push_back(b.Take());
  b.Begin(1, 2'000'000, 9 << 20)
      .Modules(second, 1u | (1u << 16))
      .Record(wire::RecordType::kSiteDef, SiteDefWithGeneration(3, {0x400300, 0x400100}, 1))
      .Counters(wire::Kind::kHeap, {Counter(1, 20, 2), Counter(3, 7, 0)})
      .End(1);
  parts.push_back(b.Take());
  b.Begin(4, 3'000'000, 10 << 20)
      .Counters(wire::Kind::kTimers, {Counter(3, 1, 0, wire::kTimerThread)})
      .Counters(wire::Kind::kHeap, {Counter(1, 30, 3)})
      .End(4);
  parts.push_back(b.Take());
  return parts;
}

void ExpectSameModules(const ModuleListPtr& a, const ModuleListPtr& b) {
  ASSERT_EQ(a == nullptr, b == nullptr);
  if (a == nullptr) return;
  EXPECT_EQ(a->has_unload_history, b->has_unload_history);
  EXPECT_EQ(a->unload_history_start, b->unload_history_start);
  EXPECT_EQ(a->unload_generation, b->unload_generation);
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    const ModuleMapping &x = (*a)[i], &y = (*b)[i];
    EXPECT_EQ(x.start, y.start);
    EXPECT_EQ(x.end, y.end);
    EXPECT_EQ(x.file_offset, y.file_offset);
    EXPECT_EQ(x.flags, y.flags);
    EXPECT_EQ(x.path, y.path);
    EXPECT_EQ(x.build_id, y.build_id);
    EXPECT_EQ(x.deleted, y.deleted);
  }
}

// What a reader of the stream knows: every site, every site's counters, the last census.
void ExpectSameState(const CensusStreamDecoder& a, const Census& a_last,
                     const CensusStreamDecoder& b, const Census& b_last) {
  ASSERT_TRUE(a.hello().has_value() && b.hello().has_value());
  EXPECT_EQ(EncodeHello(*a.hello()), EncodeHello(*b.hello()));
  EXPECT_EQ(a.hello()->identity.exe, b.hello()->identity.exe);
  ASSERT_EQ(a.sites().size(), b.sites().size());
  for (const auto& [id, stack] : a.sites()) {
    ASSERT_TRUE(b.sites().contains(id)) << id;
    const SiteStack& other = b.sites().at(id);
    EXPECT_EQ(stack.return_addresses, other.return_addresses) << id;
    EXPECT_EQ(stack.module_generation, other.module_generation) << id;
    ExpectSameModules(stack.modules, other.modules);
  }
  for (uint32_t kind = 0; kind < wire::kKindCount; ++kind) {
    EXPECT_EQ(a.counters()[kind], b.counters()[kind]) << "kind " << kind;
  }
  EXPECT_EQ(a_last.sequence, b_last.sequence);
  EXPECT_EQ(a_last.realtime_ns, b_last.realtime_ns);
  EXPECT_EQ(a_last.monotonic_ns, b_last.monotonic_ns);
  EXPECT_EQ(a_last.totals.rss_bytes, b_last.totals.rss_bytes);
  EXPECT_EQ(a_last.totals.fd_count, b_last.totals.fd_count);
  EXPECT_EQ(a_last.totals.thread_count, b_last.totals.thread_count);
  EXPECT_EQ(a_last.final, b_last.final);
  EXPECT_EQ(a_last.limits, b_last.limits);
  EXPECT_EQ(a_last.has_thread_states, b_last.has_thread_states);
  EXPECT_EQ(a_last.thread_states, b_last.thread_states);
  ExpectSameModules(a_last.modules, b_last.modules);
}

Census LastOf(CensusStreamDecoder& decoder) {
  std::vector<Census> censuses = decoder.TakeCensuses();
  EXPECT_FALSE(censuses.empty());
  return censuses.empty() ? Census() : censuses.back();
}

TEST(CensusCursorTest, StopsAtEveryCensusEndWhateverTheChunks) {
  std::string stream;
  for (const std::string& part : ThreeCensuses()) stream += part;
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, stream.size()}) {
    CensusCursor cursor;
    std::vector<uint64_t> ends;
    size_t fed = 0;
    while (fed < stream.size()) {
      const size_t n = cursor.FeedToCensusEnd(
          std::string_view(stream).substr(fed, std::min(chunk, stream.size() - fed)));
      fed += n;
      if (cursor.at_census_end()) ends.push_back(cursor.last_census()->sequence);
      ASSERT_TRUE(cursor.status().ok()) << cursor.status();
    }
    EXPECT_EQ(ends, (std::vector<uint64_t>{0, 1, 4})) << "chunk " << chunk;
    EXPECT_EQ(cursor.sequence_gaps(), 2u);
  }
}

// decode(keyframe) == the decoded state, after each census; and keyframe + the raw rest decodes
// to the state of the whole stream.
TEST(CensusEncoderTest, KeyFrameRoundTripsAndTheRawRestContinuesIt) {
  const std::vector<std::string> parts = ThreeCensuses();
  std::string whole;
  for (const std::string& part : parts) whole += part;
  CensusStreamDecoder reference;
  ASSERT_TRUE(reference.Feed(whole).ok());
  const Census reference_last = LastOf(reference);

  CensusCursor cursor;
  for (size_t cut = 0; cut < parts.size(); ++cut) {
    ASSERT_EQ(cursor.FeedToCensusEnd(parts[cut]), parts[cut].size());
    ASSERT_TRUE(cursor.at_census_end());
    const std::string key_frame = cursor.KeyFrame();
    ASSERT_FALSE(key_frame.empty());

    // The key frame alone: the state as of census `cut`.
    CensusStreamDecoder upto, from_key;
    std::string prefix;
    for (size_t i = 0; i <= cut; ++i) prefix += parts[i];
    ASSERT_TRUE(upto.Feed(prefix).ok());
    ASSERT_TRUE(from_key.Feed(key_frame).ok());
    const Census upto_last = LastOf(upto), key_last = LastOf(from_key);
    SCOPED_TRACE(::testing::Message() << "key frame after census " << cut);
    ExpectSameState(upto, upto_last, from_key, key_last);

    // The key frame, then the raw bytes that followed it: the whole stream's state.
    std::string rest;
    for (size_t i = cut + 1; i < parts.size(); ++i) rest += parts[i];
    ASSERT_TRUE(from_key.Feed(rest).ok());
    const Census continued_last = rest.empty() ? key_last : LastOf(from_key);
    ExpectSameState(reference, reference_last, from_key, continued_last);
  }
}

// Size and time of a key frame for a process with many sites (each a 16-frame stack, with heap
// counters), as `collect --state` makes one per rolled segment.
TEST(CensusEncoderTest, KeyFrameCostAtManySites) {
  for (uint32_t sites : {10'000u, 100'000u}) {
    StreamBuilder b;
    b.Hello(7, 1, "/bin/big");
    b.Begin(0, 1000).Modules({{0x400000, 0x800000, 0, wire::kModuleExec, "/bin/big"}});
    std::vector<wire::SiteCounter> counters;
    for (uint32_t id = 1; id <= sites; ++id) {
      std::vector<uint64_t> frames(16);
      for (uint32_t f = 0; f < 16; ++f) frames[f] = 0x400000 + id * 64 + f;
      b.Site(id, frames);
      counters.push_back(Counter(id, id, id / 2));
    }
    b.Counters(wire::Kind::kHeap, counters).End(0);
    CensusCursor cursor;
    const std::string stream = b.Take();
    ASSERT_EQ(cursor.FeedToCensusEnd(stream), stream.size());
    const auto start = std::chrono::steady_clock::now();
    const std::string key_frame = cursor.KeyFrame();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("key frame at %u sites: %zu bytes, %.1f ms\n", sites, key_frame.size(), ms);
    EXPECT_EQ(key_frame.size(), stream.size());  // the same records, in another order
    EXPECT_LT(ms, 2000);
  }
}

}  // namespace
}  // namespace dw::report
