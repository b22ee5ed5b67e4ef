// Tests of CensusStreamDecoder on hand-built byte streams: valid streams fed in every possible
// split, carry-forward of counters, and truncated or corrupt input.
#include "report/decode/census_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/report/census_stream_builder.h"

namespace dw::report {
namespace {

using testing::CountCounter;
using testing::Counter;
using ::testing::HasSubstr;
using testing::StreamBuilder;
using testing::ThreadState;

std::string TwoCensusStream() {
  StreamBuilder b;
  b.Hello(42, 1, "/usr/bin/target", 500);
  b.Begin(0, 1'000'000'000)
      .Modules({{.start = 0x1000, .end = 0x2000, .file_offset = 0, .path = "/usr/bin/target"},
                {.start = 0x5000, .end = 0x6000, .file_offset = 0x3000, .path = "/lib/libc.so.6"}})
      .Site(1, {0x1010, 0x1020})
      .Site(2, {0x1030})
      .Counters(wire::Kind::kHeap, {Counter(1, 10, 4, 1000, 400), Counter(2, 1, 0, 64, 0)})
      .End(0);
  // Second census: site 1 changes, site 2 is left out and keeps its values; a new site 3 appears.
  b.Begin(1, 2'000'000'000)
      .Site(3, {0x1040})
      .Counters(wire::Kind::kHeap, {Counter(1, 20, 4, 2000, 400), Counter(3, 5, 5, 50, 50)})
      .Counters(wire::Kind::kFds, {Counter(0, 3, 1, 0, 0)})
      .End(1, wire::kCensusFinal);
  return b.Take();
}

void ExpectTwoCensuses(CensusStreamDecoder& decoder, const std::vector<Census>& censuses) {
  ASSERT_TRUE(decoder.hello().has_value());
  EXPECT_EQ(decoder.hello()->identity.pid, 42u);
  EXPECT_EQ(decoder.hello()->identity.ppid, 1u);
  EXPECT_EQ(decoder.hello()->identity.exe, "/usr/bin/target");
  EXPECT_EQ(decoder.hello()->interval_ms, 500u);
  ASSERT_EQ(censuses.size(), 2u);

  const Census& first = censuses[0];
  EXPECT_EQ(first.sequence, 0u);
  EXPECT_FALSE(first.final);
  ASSERT_NE(first.modules, nullptr);
  ASSERT_EQ(first.modules->size(), 2u);
  EXPECT_EQ((*first.modules)[1].path, "/lib/libc.so.6");
  EXPECT_EQ((*first.modules)[1].file_offset, 0x3000u);
  const auto& heap0 = first.counters[0];
  EXPECT_EQ(heap0.at(1).Live(), 6);
  EXPECT_EQ(heap0.at(1).LiveBytes(), 600);
  EXPECT_EQ(heap0.at(2).LiveBytes(), 64);

  const Census& second = censuses[1];
  EXPECT_TRUE(second.final);
  EXPECT_EQ(second.modules, first.modules);  // no new ModuleList: the old one stays in effect
  const auto& heap1 = second.counters[0];
  EXPECT_EQ(heap1.at(1).acquired, 20u);
  EXPECT_EQ(heap1.at(1).LiveBytes(), 1600);
  EXPECT_EQ(heap1.at(2).LiveBytes(), 64) << "left-out site keeps its last values";
  EXPECT_EQ(heap1.at(3).Live(), 0);
  EXPECT_EQ(second.counters[static_cast<int>(wire::Kind::kFds)].at(0).Live(), 2);

  ASSERT_EQ(decoder.sites().size(), 3u);
  EXPECT_EQ(decoder.sites().at(1).return_addresses, (std::vector<uint64_t>{0x1010, 0x1020}));
  EXPECT_TRUE(decoder.saw_final());
  EXPECT_EQ(decoder.sequence_gaps(), 0u);
  EXPECT_TRUE(decoder.Finish().ok());
}

TEST(CensusStreamTest, DecodesWholeStream) {
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(TwoCensusStream()).ok());
  ExpectTwoCensuses(decoder, decoder.TakeCensuses());
  EXPECT_TRUE(decoder.TakeCensuses().empty());
}

// Changes-only mode (the collector's): a census holds only the sites it changed, so decoding one
// costs O(changed sites); counters() carries every site forward.
TEST(CensusStreamTest, ChangesOnlyCensusesCarryOnlyWhatChanged) {
  CensusStreamDecoder decoder;
  decoder.set_changes_only(true);
  ASSERT_TRUE(decoder.Feed(TwoCensusStream()).ok());
  const std::vector<Census> censuses = decoder.TakeCensuses();
  ASSERT_EQ(censuses.size(), 2u);
  EXPECT_EQ(censuses[0].counters[0].size(), 2u);
  const auto& heap1 = censuses[1].counters[0];
  EXPECT_EQ(heap1.size(), 2u) << "site 2 did not change in the second census";
  EXPECT_FALSE(heap1.contains(2));
  EXPECT_EQ(heap1.at(1).acquired, 20u);
  EXPECT_EQ(heap1.at(3).Live(), 0);
  const auto& all = decoder.counters();
  EXPECT_EQ(all[0].size(), 3u);
  EXPECT_EQ(all[0].at(2).LiveBytes(), 64) << "left-out site keeps its last values";
  EXPECT_EQ(all[0].at(1).LiveBytes(), 1600);
  EXPECT_EQ(all[static_cast<int>(wire::Kind::kFds)].at(0).Live(), 2);
  EXPECT_EQ(decoder.TakeSites().size(), 3u);
  EXPECT_TRUE(decoder.sites().empty());
}

TEST(CensusStreamTest, DecodesByteByByte) {
  const std::string stream = TwoCensusStream();
  CensusStreamDecoder decoder;
  std::vector<Census> censuses;
  for (char c : stream) {
    ASSERT_TRUE(decoder.Feed(std::string_view(&c, 1)).ok());
    for (Census& census : decoder.TakeCensuses()) censuses.push_back(std::move(census));
  }
  ExpectTwoCensuses(decoder, censuses);
}

TEST(CensusStreamTest, DecodesEverySplitInTwo) {
  const std::string stream = TwoCensusStream();
  for (size_t split = 0; split <= stream.size(); ++split) {
    CensusStreamDecoder decoder;
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(0, split)).ok()) << split;
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(split)).ok()) << split;
    ASSERT_EQ(decoder.TakeCensuses().size(), 2u) << split;
  }
}

TEST(CensusStreamTest, CensusIsOnlyCompleteAtCensusEnd) {
  StreamBuilder b;
  b.Hello(1, 0, "/x")
      .Begin(0, 1)
      .Site(1, {0x10})
      .Counters(wire::Kind::kHeap, {Counter(1, 1, 0, 8, 0)});
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(b.Take()).ok());
  EXPECT_TRUE(decoder.TakeCensuses().empty());
  absl::Status finish = decoder.Finish();
  EXPECT_FALSE(finish.ok());
  EXPECT_THAT(std::string(finish.message()), HasSubstr("inside census 0"));
}

TEST(CensusStreamTest, TruncatedRecordIsReportedAtFinish) {
  const std::string stream = TwoCensusStream();
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(0, stream.size() - 3)).ok());
  EXPECT_EQ(decoder.TakeCensuses().size(), 1u) << "the complete first census is kept";
  absl::Status finish = decoder.Finish();
  EXPECT_FALSE(finish.ok());
  EXPECT_THAT(std::string(finish.message()), HasSubstr("incomplete record"));
}

TEST(CensusStreamTest, SkipsUnknownRecordTypesAndKinds) {
  StreamBuilder b;
  b.Hello(1, 0, "/x").Record(99, "future stuff").Begin(0, 1).Site(1, {0x10});
  b.Record(1000, std::string(100, 'z'));
  b.Counters(17, {Counter(1, 5, 0, 0, 0)});  // a kind this collector does not know
  b.Counters(wire::Kind::kHeap, {Counter(1, 1, 0, 8, 0)}).End(0);
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(b.Take()).ok());
  auto censuses = decoder.TakeCensuses();
  ASSERT_EQ(censuses.size(), 1u);
  EXPECT_EQ(censuses[0].counters[0].at(1).LiveBytes(), 8);
}

TEST(CensusStreamTest, CountsSequenceGaps) {
  StreamBuilder b;
  b.Hello(1, 0, "/x").Begin(0, 1).End(0).Begin(3, 2).End(3);
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(b.Take()).ok());
  EXPECT_EQ(decoder.TakeCensuses().size(), 2u);
  EXPECT_EQ(decoder.sequence_gaps(), 2u);
}

wire::Limits SomeLimits() {
  wire::Limits limits{};
  limits.nofile_soft = 1024;
  limits.nofile_hard = 524288;
  limits.pids_max = 4915;
  limits.memory_total_bytes = uint64_t{8} << 30;
  return limits;
}

// Shim 0.2 records: Limits (carried forward), ThreadStates (per census), SiteCounter.detail.
std::string EveryKindStream() {
  StreamBuilder b;
  b.Hello(7, 1, "/srv/server");
  b.Begin(0, 1'000'000'000)
      .Limits(SomeLimits())
      .Site(1, {0x10})
      .Site(2, {0x20})
      .Site(3, {0x30})
      .Counters(wire::Kind::kFds, {CountCounter(1, 3, 1, wire::kFdSocketInet)})
      .Counters(wire::Kind::kThreads, {CountCounter(2, 4, 0)})
      .Counters(wire::Kind::kTimers, {CountCounter(3, 2, 0, wire::kTimerThread)})
      .ThreadStates(
          {{ThreadState(2, 1, 3, 65'000, 3), "futex_wait_queue"}, {ThreadState(0, 1, 0), ""}})
      .End(0);
  // Second census: no Limits (kept), fd site 1 gains a bit, no ThreadStates (none kept).
  b.Begin(1, 2'000'000'000)
      .Counters(wire::Kind::kFds, {CountCounter(1, 5, 1, wire::kFdSocketInet | wire::kFdPipe)})
      .End(1);
  // Third census: new Limits, a ThreadStates record split in two (both kept, later wins).
  wire::Limits raised = SomeLimits();
  raised.nofile_soft = 4096;
  b.Begin(2, 3'000'000'000)
      .Limits(raised)
      .ThreadStates({{ThreadState(2, 0, 4), "old"}})
      .ThreadStates({{ThreadState(2, 0, 5), "ep_poll"}})
      .End(2);
  return b.Take();
}

TEST(CensusStreamTest, DecodesLimitsThreadStatesAndDetail) {
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(EveryKindStream()).ok());
  ASSERT_TRUE(decoder.Finish().ok());
  const std::vector<Census> censuses = decoder.TakeCensuses();
  ASSERT_EQ(censuses.size(), 3u);
  const auto fds = static_cast<size_t>(wire::Kind::kFds);
  const auto timers = static_cast<size_t>(wire::Kind::kTimers);

  const Census& first = censuses[0];
  ASSERT_TRUE(first.limits.has_value());
  EXPECT_EQ(first.limits->nofile_soft, 1024u);
  EXPECT_EQ(first.limits->nofile_hard, 524288u);
  EXPECT_EQ(first.limits->pids_max, 4915u);
  EXPECT_EQ(first.limits->nproc_soft, 0u);
  EXPECT_EQ(first.limits->memory_total_bytes, uint64_t{8} << 30);
  EXPECT_EQ(first.counters[fds].at(1).detail, wire::kFdSocketInet);
  EXPECT_EQ(first.counters[fds].at(1).Live(), 2);
  EXPECT_EQ(first.counters[timers].at(3).detail, wire::kTimerThread);
  EXPECT_TRUE(first.has_thread_states);
  ASSERT_EQ(first.thread_states.size(), 2u);
  const ThreadSiteState& workers = first.thread_states.at(2);
  EXPECT_EQ(workers.running, 1u);
  EXPECT_EQ(workers.sleeping, 3u);
  EXPECT_EQ(workers.longest_idle_ms, 65'000u);
  EXPECT_EQ(workers.idle_over_minute, 3u);
  EXPECT_EQ(workers.wchan, "futex_wait_queue");
  EXPECT_EQ(workers.Total(), 4u);
  EXPECT_EQ(first.thread_states.at(0).wchan, "");

  const Census& second = censuses[1];
  ASSERT_TRUE(second.limits.has_value()) << "limits are carried forward";
  EXPECT_EQ(second.limits->nofile_soft, 1024u);
  EXPECT_EQ(second.counters[fds].at(1).detail, wire::kFdSocketInet | wire::kFdPipe);
  EXPECT_EQ(second.counters[timers].at(3).detail, wire::kTimerThread) << "detail carried forward";
  EXPECT_FALSE(second.has_thread_states);
  EXPECT_TRUE(second.thread_states.empty()) << "thread states are a per-census snapshot";

  const Census& third = censuses[2];
  EXPECT_EQ(third.limits->nofile_soft, 4096u);
  ASSERT_EQ(third.thread_states.size(), 1u);
  EXPECT_EQ(third.thread_states.at(2).sleeping, 5u);
  EXPECT_EQ(third.thread_states.at(2).wchan, "ep_poll");
}

TEST(CensusStreamTest, NewRecordsDecodeInEverySplit) {
  const std::string stream = EveryKindStream();
  for (size_t split = 0; split <= stream.size(); ++split) {
    CensusStreamDecoder decoder;
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(0, split)).ok()) << split;
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(split)).ok()) << split;
    const std::vector<Census> censuses = decoder.TakeCensuses();
    ASSERT_EQ(censuses.size(), 3u) << split;
    EXPECT_EQ(censuses[0].thread_states.at(2).wchan, "futex_wait_queue") << split;
  }
}

TEST(CensusStreamTest, StreamWithoutNewRecordsHasNoLimitsOrStates) {
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(TwoCensusStream()).ok());
  for (const Census& census : decoder.TakeCensuses()) {
    EXPECT_FALSE(census.limits.has_value());
    EXPECT_FALSE(census.has_thread_states);
    EXPECT_EQ(census.counters[0].at(1).detail, 0u);
  }
}

TEST(CensusStreamTest, NamesDetailBits) {
  EXPECT_THAT(FdTypeNames(wire::kFdFile | wire::kFdSocketInet6 | wire::kFdUnknown),
              ::testing::ElementsAre("file", "socket/inet6", "unknown"));
  EXPECT_THAT(FdTypeNames(wire::kFdSocketOther | wire::kFdOtherAnon | wire::kFdPidfd),
              ::testing::ElementsAre("socket", "pidfd", "anon_inode"));
  EXPECT_THAT(FdTypeNames(1u << 20), ::testing::ElementsAre("bit20")) << "a newer shim's bit";
  EXPECT_TRUE(FdTypeNames(0).empty());
  EXPECT_THAT(TimerNotifyNames(wire::kTimerSignal | wire::kTimerThreadId),
              ::testing::ElementsAre("signal", "thread_id"));
  EXPECT_THAT(TimerNotifyNames(wire::kTimerNone), ::testing::ElementsAre("none"));
  EXPECT_THAT(TimerNotifyNames(wire::kTimerThread), ::testing::ElementsAre("thread"));
}

// A census whose ModuleList is followed by a BuildIds record naming two of its three entries.
std::string BuildIdStream() {
  StreamBuilder b;
  b.Hello(5, 1, "/usr/bin/server");
  b.Begin(0, 1'000'000'000)
      .Modules({{.start = 0x1000, .end = 0x2000, .file_offset = 0, .path = "/usr/bin/server"},
                {.start = 0x2000,
                 .end = 0x3000,
                 .file_offset = 0x1000,
                 .flags = wire::kModuleRead | wire::kModuleExec,
                 .path = "/usr/bin/server"},
                {.start = 0x7000, .end = 0x8000, .file_offset = 0, .path = "/lib/libc.so.6"}})
      .BuildIds({{0, std::string("\x01\xab\xCD\xef\x00\x7f\x80\xff", 8)},
                 {2, std::string(wire::kMaxBuildIdLength, '\xA5')}})
      .Site(1, {0x2010})
      .End(0);
  // A later ModuleList without BuildIds: a shim that could not read them this time.
  b.Begin(1, 2'000'000'000)
      .Modules({{.start = 0x1000, .end = 0x2000, .file_offset = 0, .path = "/usr/bin/server"}})
      .Site(2, {0x2020})
      .End(1);
  return b.Take();
}

void ExpectBuildIds(const std::vector<Census>& censuses, const CensusStreamDecoder& decoder) {
  ASSERT_EQ(censuses.size(), 2u);
  const ModuleListPtr& modules = censuses[0].modules;
  ASSERT_NE(modules, nullptr);
  ASSERT_EQ(modules->size(), 3u);
  EXPECT_EQ((*modules)[0].build_id, "01abcdef007f80ff") << "lowercase hex of the bytes";
  EXPECT_EQ((*modules)[1].build_id, "") << "only the indexed entries carry one";
  std::string a5s;
  for (uint32_t i = 0; i < wire::kMaxBuildIdLength; ++i) a5s += "a5";
  EXPECT_EQ((*modules)[2].build_id, a5s) << "the longest build-id allowed";

  // A site defined after the BuildIds carries the amended list.
  ASSERT_EQ(decoder.sites().at(1).modules, modules);
  EXPECT_EQ((*decoder.sites().at(1).modules)[0].build_id, "01abcdef007f80ff");

  // The next ModuleList has none of its own; the old list, still the first site's, keeps them.
  const ModuleListPtr& later = censuses[1].modules;
  ASSERT_NE(later, nullptr);
  ASSERT_NE(later, modules);
  ASSERT_EQ(later->size(), 1u);
  EXPECT_EQ((*later)[0].build_id, "");
  EXPECT_EQ(decoder.sites().at(2).modules, later);
  EXPECT_EQ((*decoder.sites().at(1).modules)[2].build_id, a5s);
}

TEST(CensusStreamTest, BuildIdsAmendTheModuleListBeforeThem) {
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(BuildIdStream()).ok());
  ASSERT_TRUE(decoder.Finish().ok());
  ExpectBuildIds(decoder.TakeCensuses(), decoder);
}

TEST(CensusStreamTest, BuildIdsDecodeInEverySplit) {
  const std::string stream = BuildIdStream();
  for (size_t split = 0; split <= stream.size(); ++split) {
    SCOPED_TRACE(split);
    CensusStreamDecoder decoder;
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(0, split)).ok());
    std::vector<Census> censuses = decoder.TakeCensuses();
    ASSERT_TRUE(decoder.Feed(std::string_view(stream).substr(split)).ok());
    for (Census& census : decoder.TakeCensuses()) censuses.push_back(std::move(census));
    ExpectBuildIds(censuses, decoder);
  }
}

TEST(CensusStreamTest, BuildIdsMayAmendAModuleListOfUnloadedModules) {
  // The shim appends dlclose'd modules to the ModuleList; their build-ids come the same way.
  StreamBuilder b;
  b.Hello(5, 1, "/usr/bin/host");
  b.Begin(0, 1)
      .Modules({{.start = 0x1000, .end = 0x2000, .file_offset = 0, .path = "/usr/bin/host"},
                {.start = 0x9000,
                 .end = 0xa000,
                 .file_offset = 0,
                 .flags = wire::kModuleRead | wire::kModuleUnloaded,
                 .path = "/opt/plugins/session.so"}})
      .BuildIds({{1, "\x12\x34"}})
      .End(0);
  CensusStreamDecoder decoder;
  ASSERT_TRUE(decoder.Feed(b.Take()).ok());
  const std::vector<Census> censuses = decoder.TakeCensuses();
  ASSERT_EQ(censuses.size(), 1u);
  EXPECT_EQ((*censuses[0].modules)[0].build_id, "");
  EXPECT_EQ((*censuses[0].modules)[1].build_id, "1234");
  EXPECT_TRUE((*censuses[0].modules)[1].unloaded());
}

// Decodes a stream of one census and returns its module list; null (and a test failure) if
// the stream does not decode to exactly that.
ModuleListPtr OnlyModuleList(StreamBuilder& b) {
  CensusStreamDecoder decoder;
  const absl::Status status = decoder.Feed(b.Take());
  EXPECT_TRUE(status.ok()) << status;
  const std::vector<Census> censuses = decoder.TakeCensuses();
  EXPECT_EQ(censuses.size(), 1u);
  return censuses.size() == 1 ? censuses[0].modules : nullptr;
}

TEST(CensusStreamTest, DeletedSuffixIsStrippedAndFlagged) {
  StreamBuilder b;
  b.Hello(5, 1, "/usr/bin/server");
  b.Begin(0, 1)
      .Modules({{.start = 0x1000, .end = 0x2000, .path = "/usr/bin/server (deleted)"},
                {.start = 0x3000, .end = 0x4000, .path = "/tmp/x (deleted)/lib.so"},
                {.start = 0x5000, .end = 0x6000, .path = "/lib/libc.so.6"},
                {.start = 0x7000, .end = 0x8000, .path = "/lib/libc.so.6(deleted)"}})
      .End(0);
  const ModuleListPtr decoded = OnlyModuleList(b);
  ASSERT_NE(decoded, nullptr);
  const ModuleList& modules = *decoded;
  ASSERT_EQ(modules.size(), 4u);
  EXPECT_EQ(modules[0].path, "/usr/bin/server");
  EXPECT_TRUE(modules[0].deleted);
  EXPECT_EQ(modules[1].path, "/tmp/x (deleted)/lib.so") << "only a trailing marker counts";
  EXPECT_FALSE(modules[1].deleted);
  EXPECT_EQ(modules[2].path, "/lib/libc.so.6");
  EXPECT_FALSE(modules[2].deleted);
  EXPECT_EQ(modules[3].path, "/lib/libc.so.6(deleted)") << "the kernel puts a space before it";
  EXPECT_FALSE(modules[3].deleted);
}

TEST(CensusStreamTest, UnloadHistoryAndNumbersAreDecoded) {
  StreamBuilder b;
  b.Hello(5, 1, "/usr/bin/host");
  b.Begin(0, 1)
      .Modules({{.start = 0x9000,
                 .end = 0xa000,
                 .flags = wire::kModuleRead | wire::kModuleExec | wire::kModuleUnloaded |
                          (7u << wire::kModuleUnloadShift),
                 .path = "/opt/plugins/session.so"}},
               /*unload_history=*/(9u << 16) | 6u)
      .End(0);
  const ModuleListPtr decoded = OnlyModuleList(b);
  ASSERT_NE(decoded, nullptr);
  const ModuleList& modules = *decoded;
  EXPECT_TRUE(modules.has_unload_history);
  EXPECT_EQ(modules.unload_history_start, 6);
  EXPECT_EQ(modules.unload_generation, 9);
  EXPECT_EQ(modules[0].unload_number(), 7);
}

TEST(CensusStreamTest, UnloadedFlagIsReported) {
  StreamBuilder b;
  b.Hello(5, 1, "/usr/bin/host");
  b.Begin(0, 1)
      .Modules({{.start = 0x1000,
                 .end = 0x2000,
                 .flags = wire::kModuleRead | wire::kModuleExec,
                 .path = "/usr/bin/host"},
                {.start = 0x9000,
                 .end = 0xa000,
                 .file_offset = 0x1000,
                 .flags = wire::kModuleRead | wire::kModuleExec | wire::kModuleUnloaded,
                 .path = "/opt/plugins/session.so"}})
      .End(0);
  const ModuleListPtr decoded = OnlyModuleList(b);
  ASSERT_NE(decoded, nullptr);
  const ModuleList& modules = *decoded;
  ASSERT_EQ(modules.size(), 2u);
  EXPECT_FALSE(modules[0].unloaded());
  EXPECT_TRUE(modules[1].unloaded());
  EXPECT_EQ(modules[1].flags, wire::kModuleRead | wire::kModuleExec | wire::kModuleUnloaded);
  EXPECT_EQ(modules[1].path, "/opt/plugins/session.so");
  EXPECT_FALSE(modules[1].deleted);
}

// Each corrupt stream must fail with a message containing the given text, and stay failed.
struct CorruptCase {
  const char* name;
  std::string stream;
  const char* message;
};

std::vector<CorruptCase> CorruptCases() {
  std::vector<CorruptCase> cases;
  auto hello = [] {
    StreamBuilder b;
    b.Hello(1, 0, "/x");
    return b;
  };
  {
    StreamBuilder b;
    b.Hello(1, 0, "/x", 1000, 0xdeadbeef);
    cases.push_back({"bad magic", b.Take(), "bad magic"});
  }
  {
    StreamBuilder b;
    b.Hello(1, 0, "/x", 1000, wire::kHelloMagic, 2);
    cases.push_back({"bad version", b.Take(), "protocol version 2"});
  }
  {
    StreamBuilder b;
    b.Begin(0, 1);
    cases.push_back({"no hello", b.Take(), "does not start with a Hello"});
  }
  {
    std::string s = "GET / HTTP/1.1\r\n\r\n";
    cases.push_back({"http", s, "does not start with a Hello"});
  }
  {
    wire::RecordHeader header{static_cast<uint32_t>(wire::RecordType::kSiteDef),
                              wire::kMaxRecordLength + 1};
    std::string s = hello().Take() + StreamBuilder::Bytes(header);
    cases.push_back({"oversized record", s, "more than the limit"});
  }
  {
    wire::Hello h{};
    h.magic = wire::kHelloMagic;
    h.protocol_version = wire::kProtocolVersion;
    h.exe_length = 50;  // but no path bytes follow
    std::string s =
        StreamBuilder().Record(wire::RecordType::kHello, StreamBuilder::Bytes(h)).Take();
    cases.push_back({"exe length", s, "exe_length 50"});
  }
  {
    StreamBuilder b = hello();
    b.Hello(1, 0, "/x");
    cases.push_back({"second hello", b.Take(), "second Hello"});
  }
  {
    StreamBuilder b = hello();
    b.Site(1, {0x10});
    cases.push_back({"site outside census", b.Take(), "outside a census"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Site(1, std::vector<uint64_t>(wire::kMaxDepth + 1, 0x10));
    cases.push_back({"too deep", b.Take(), "exceeds kMaxDepth"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Site(0, {0x10});
    cases.push_back({"site zero", b.Take(), "site id 0"});
  }
  {
    StreamBuilder b = hello();
    wire::SiteDef def{1, 3, 0};  // claims 3 frames, carries 1
    b.Begin(0, 1).Record(wire::RecordType::kSiteDef,
                         StreamBuilder::Bytes(def) + StreamBuilder::Bytes(uint64_t{0x10}));
    cases.push_back({"short site", b.Take(), "depth 3 needs"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Site(1, {0x10}).Site(1, {0x20});
    cases.push_back({"redefined site", b.Take(), "redefined"});
  }
  {
    StreamBuilder b = hello();
    wire::CountersHeader header{0, 1000};  // claims 1000 entries, carries none
    b.Begin(0, 1).Record(wire::RecordType::kCounters, StreamBuilder::Bytes(header));
    cases.push_back({"counter count", b.Take(), "count 1000"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Counters(wire::Kind::kHeap, {Counter(7, 1, 0, 1, 0)});
    cases.push_back({"undefined site", b.Take(), "never defined"});
  }
  {
    StreamBuilder b = hello();
    wire::ModuleListHeader header{0x10000000, 0};
    b.Begin(0, 1).Record(wire::RecordType::kModuleList, StreamBuilder::Bytes(header));
    cases.push_back({"module count", b.Take(), "does not fit"});
  }
  {
    StreamBuilder b = hello();
    wire::ModuleListHeader header{1, 0};
    wire::ModuleEntry entry{0x1000, 0x2000, 0, 0, 400};
    b.Begin(0, 1).Record(wire::RecordType::kModuleList,
                         StreamBuilder::Bytes(header) + StreamBuilder::Bytes(entry) + "/short");
    cases.push_back({"module path", b.Take(), "overruns"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).End(1);
    cases.push_back({"end sequence", b.Take(), "does not match"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Begin(1, 2);
    cases.push_back({"nested begin", b.Take(), "before census 0 ended"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(5, 1).End(5).Begin(5, 2);
    cases.push_back({"sequence backwards", b.Take(), "does not follow"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Record(wire::RecordType::kCensusEnd, "short");
    cases.push_back({"short end", b.Take(), "expected 16"});
  }
  {
    StreamBuilder b = hello();
    b.End(0);
    cases.push_back({"end without begin", b.Take(), "without a CensusBegin"});
  }
  {
    StreamBuilder b = hello();
    b.Limits(SomeLimits());
    cases.push_back({"limits outside census", b.Take(), "Limits record at stream offset"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Record(wire::RecordType::kLimits, std::string(sizeof(wire::Limits) - 8, '\0'));
    cases.push_back({"short limits", b.Take(), "expected 64"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Record(wire::RecordType::kLimits, std::string(sizeof(wire::Limits) + 8, '\0'));
    cases.push_back({"long limits", b.Take(), "expected 64"});
  }
  {
    StreamBuilder b = hello();
    b.ThreadStates({{ThreadState(1, 1, 0), ""}});
    cases.push_back({"states outside census", b.Take(), "ThreadStates record"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).Record(wire::RecordType::kThreadStates, "abc");
    cases.push_back({"states header", b.Take(), "shorter than its header"});
  }
  {
    StreamBuilder b = hello();
    wire::ThreadStatesHeader header{1000, 0};  // claims 1000 entries, carries none
    b.Begin(0, 1).Record(wire::RecordType::kThreadStates, StreamBuilder::Bytes(header));
    cases.push_back({"states count", b.Take(), "count 1000 does not fit"});
  }
  {
    StreamBuilder b = hello();
    wire::ThreadStatesHeader header{1, 0};
    wire::ThreadSiteState entry = ThreadState(1, 1, 0);
    entry.wchan_length = 40;  // but only 5 bytes follow
    b.Begin(0, 1).Record(wire::RecordType::kThreadStates,
                         StreamBuilder::Bytes(header) + StreamBuilder::Bytes(entry) + "futex");
    cases.push_back({"wchan overrun", b.Take(), "wchan_length 40 overruns"});
  }
  {
    StreamBuilder b = hello();
    wire::ThreadStatesHeader header{2, 0};
    wire::ThreadSiteState entry = ThreadState(1, 1, 0);
    entry.wchan_length = 30;  // eats into the second entry's fixed part
    b.Begin(0, 1).Record(wire::RecordType::kThreadStates,
                         StreamBuilder::Bytes(header) + StreamBuilder::Bytes(entry) +
                             std::string(30, 'w') + StreamBuilder::Bytes(entry).substr(0, 30));
    cases.push_back({"states second entry truncated", b.Take(), "entry 1 is truncated"});
  }
  {
    StreamBuilder b = hello();
    wire::ThreadStatesHeader header{1, 0};
    wire::ThreadSiteState entry = ThreadState(1, 1, 0);
    entry.wchan_length = kMaxWchanLength + 1;
    b.Begin(0, 1).Record(wire::RecordType::kThreadStates,
                         StreamBuilder::Bytes(header) + StreamBuilder::Bytes(entry) +
                             std::string(kMaxWchanLength + 1, 'w'));
    cases.push_back({"wchan too long", b.Take(), "exceeds 512"});
  }
  {
    StreamBuilder b = hello();
    wire::ThreadStatesHeader header{1, 0};
    wire::ThreadSiteState entry = ThreadState(1, 1, 0);
    entry.wchan_length = 5;
    b.Begin(0, 1).Record(
        wire::RecordType::kThreadStates,
        StreamBuilder::Bytes(header) + StreamBuilder::Bytes(entry) + "futex" + "junk");
    cases.push_back({"states trailing", b.Take(), "4 trailing bytes after 1 entries"});
  }
  // BuildIds: only right after a ModuleList, and every entry well-formed.
  auto with_modules = [&] {
    StreamBuilder b = hello();
    b.Begin(0, 1).Modules({{.start = 0x1000, .end = 0x2000, .path = "/a"},
                           {.start = 0x3000, .end = 0x4000, .path = "/b"}});
    return b;
  };
  auto build_ids_payload = [](uint32_t count, const std::vector<wire::BuildIdEntry>& entries,
                              const std::string& bytes) {
    std::string payload = StreamBuilder::Bytes(wire::BuildIdsHeader{count, 0});
    for (const wire::BuildIdEntry& entry : entries) payload += StreamBuilder::Bytes(entry);
    return payload + bytes;
  };
  {
    StreamBuilder b = hello();
    b.BuildIds({{0, "\x01"}});
    cases.push_back({"build ids before any census", b.Take(), "not right after a ModuleList"});
  }
  {
    StreamBuilder b = hello();
    b.Begin(0, 1).BuildIds({{0, "\x01"}});
    cases.push_back({"build ids after begin", b.Take(), "not right after a ModuleList"});
  }
  {
    StreamBuilder b = with_modules();
    b.Site(1, {0x1010}).BuildIds({{0, "\x01"}});
    cases.push_back({"build ids after site", b.Take(), "not right after a ModuleList"});
  }
  {
    StreamBuilder b = with_modules();
    b.BuildIds({{0, "\x01"}}).BuildIds({{1, "\x02"}});
    cases.push_back({"second build ids", b.Take(), "not right after a ModuleList"});
  }
  {
    StreamBuilder b = with_modules();
    b.End(0).Begin(1, 2).BuildIds({{0, "\x01"}});
    cases.push_back({"build ids in the next census", b.Take(), "not right after a ModuleList"});
  }
  {
    StreamBuilder b = with_modules();
    b.Record(99, "future").BuildIds({{0, "\x01"}});
    cases.push_back({"build ids after unknown", b.Take(), "not right after a ModuleList"});
  }
  {
    StreamBuilder b = with_modules();
    b.Record(wire::RecordType::kBuildIds, "abc");
    cases.push_back({"build ids header", b.Take(), "shorter than its header"});
  }
  {
    StreamBuilder b = with_modules();
    b.Record(wire::RecordType::kBuildIds,
             build_ids_payload(2, {{0, 2}}, "\x01\x02") + std::string("\x01\x00\x00", 3));
    cases.push_back({"build id entry truncated", b.Take(), "entry 1 is truncated"});
  }
  {
    StreamBuilder b = with_modules();
    b.Record(wire::RecordType::kBuildIds, build_ids_payload(1, {}, ""));
    cases.push_back({"build id count", b.Take(), "entry 0 is truncated"});
  }
  {
    StreamBuilder b = with_modules();
    b.BuildIds({{0, ""}});
    cases.push_back({"build id length 0", b.Take(), "entry 0 has a bad length 0"});
  }
  {
    StreamBuilder b = with_modules();
    b.BuildIds({{1, std::string(wire::kMaxBuildIdLength + 1, '\x11')}});
    cases.push_back({"build id length 65", b.Take(), "entry 0 has a bad length 65"});
  }
  {
    StreamBuilder b = with_modules();
    b.Record(wire::RecordType::kBuildIds, build_ids_payload(1, {{0, 20}}, "\x01\x02\x03"));
    cases.push_back({"build id overruns", b.Take(), "entry 0 has a bad length 20"});
  }
  {
    StreamBuilder b = with_modules();
    b.BuildIds({{0, "\x01"}, {2, "\x02"}});
    cases.push_back({"build id index", b.Take(), "entry 1 names module 2 of 2"});
  }
  {
    StreamBuilder b = with_modules();
    b.Record(wire::RecordType::kBuildIds, build_ids_payload(1, {{1, 2}},
                                                            "\xab\xcd"
                                                            "xyz"));
    cases.push_back({"build ids trailing", b.Take(), "3 trailing bytes after 1 entries"});
  }
  return cases;
}

TEST(CensusStreamTest, RejectsCorruptStreams) {
  for (const CorruptCase& c : CorruptCases()) {
    SCOPED_TRACE(c.name);
    CensusStreamDecoder decoder;
    absl::Status status = decoder.Feed(c.stream);
    EXPECT_FALSE(status.ok());  // not ASSERT: every case is reported, not only the first
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
    // Sticky: later input cannot resurrect a corrupt connection.
    EXPECT_FALSE(decoder.Feed(StreamBuilder().Hello(1, 0, "/x").Take()).ok());
    EXPECT_FALSE(decoder.Finish().ok());
  }
}

TEST(CensusStreamTest, ErrorNamesRecordAndOffset) {
  StreamBuilder b;
  b.Hello(1, 0, "/x");
  const size_t offset = b.bytes().size();
  b.End(0);
  CensusStreamDecoder decoder;
  absl::Status status = decoder.Feed(b.Take());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("CensusEnd record at stream offset " + std::to_string(offset)));
}

TEST(CensusStreamTest, BuildIdsErrorNamesRecordAndOffset) {
  StreamBuilder b;
  b.Hello(1, 0, "/x").Begin(0, 1).Modules({{.start = 0x1000, .end = 0x2000, .path = "/a"}});
  const size_t offset = b.bytes().size();
  b.BuildIds({{1, "\x01"}});
  CensusStreamDecoder decoder;
  absl::Status status = decoder.Feed(b.Take());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()), "BuildIds record at stream offset " +
                                               std::to_string(offset) +
                                               ": entry 0 names module 1 of 1");
}

}  // namespace
}  // namespace dw::report
