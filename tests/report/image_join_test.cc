// image_join_test.cc: the connections of one process image are one series (collector.h): a
// census thread that stepped aside (unshare, setns, capset) comes back on a new connection with
// the same image nonce, and the collector carries its series on; another image of the process
// (an exec) or a connection that ended with its final census stays a series of its own.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "report/decode/census_stream.h"
#include "report/transport/collector.h"
#include "tests/report/census_stream_builder.h"

namespace dw::report {
namespace {

using testing::StreamBuilder;

std::string ImageConnection(uint64_t nonce, uint32_t index, uint64_t first_sequence, int censuses,
                            uint64_t start_s, uint64_t live_from, bool final) {
  StreamBuilder b;
  b.Hello(41, 1, "/srv/daemon").Image(nonce, index);
  for (int i = 0; i < censuses; ++i) {
    const uint64_t sequence = first_sequence + static_cast<uint64_t>(i);
    const uint64_t live = live_from + static_cast<uint64_t>(i);
    b.Begin(sequence, (start_s + static_cast<uint64_t>(i)) * 1'000'000'000);
    // Each connection defines its sites again, under the same ids.
    if (i == 0) {
      b.Modules({{0x400000, 0x500000, 0, wire::kModuleRead | wire::kModuleExec, "/srv/daemon"}})
          .Site(3, {0x401000});
    }
    b.Counters(wire::Kind::kHeap, {{3, 0, live, 0, live * 64, 0}})
        .End(sequence, final && i + 1 == censuses ? wire::kCensusFinal : 0);
  }
  return b.Take();
}

std::vector<ConnectionRecord> ReplayConnections(const std::vector<std::string>& streams) {
  std::unique_ptr<Collector> collector = Collector::CreateOffline();
  for (const std::string& stream : streams) {
    const uint32_t connection = collector->OpenOffline();
    collector->FeedOffline(connection, stream);
    collector->EndOffline(connection, "");
  }
  return collector->Finish();
}

TEST(ImageJoinTest, ImageDecodedAfterHello) {
  CensusStreamDecoder decoder;
  StreamBuilder b;
  b.Hello(41, 1, "/srv/daemon");
  ASSERT_TRUE(decoder.Feed(b.Take()).ok());
  EXPECT_FALSE(decoder.hello_complete()) << "the Image may still follow";
  b.Image(0xfeed, 2);
  ASSERT_TRUE(decoder.Feed(b.Take()).ok());
  ASSERT_TRUE(decoder.hello_complete());
  ASSERT_TRUE(decoder.hello()->image.has_value());
  EXPECT_EQ(decoder.hello()->image->nonce, 0xfeedu);
  EXPECT_EQ(decoder.hello()->image->connection_index, 2u);
  EXPECT_FALSE(decoder.Feed(StreamBuilder().Image(1, 3).Take()).ok()) << "a second Image";
}

TEST(ImageJoinTest, ReconnectionOfOneImageIsOneSeries) {
  std::vector<ConnectionRecord> records =
      ReplayConnections({ImageConnection(0xabc, 0, 0, 5, 1, 10, false),
                         ImageConnection(0xabc, 1, 0, 4, 8, 17, true)});
  ASSERT_EQ(records.size(), 1u) << records[0].stream_error;
  const ConnectionRecord& record = records[0];
  EXPECT_EQ(record.stream_error, "");
  EXPECT_EQ(record.census_count, 9u);
  EXPECT_TRUE(record.saw_final);
  EXPECT_EQ(record.continues, std::optional<uint32_t>(0));
  const SiteSeries* site = record.series.Find({wire::Kind::kHeap, 3});
  ASSERT_NE(site, nullptr);
  ASSERT_EQ(site->live.size(), 9u);
  EXPECT_EQ(site->live.front(), 10);
  EXPECT_EQ(site->live.back(), 20);
  EXPECT_DOUBLE_EQ(record.series.times().back() - record.series.times().front(), 10.0);
}

TEST(ImageJoinTest, AnotherImageOrAFinishedConnectionIsNotJoined) {
  // An exec: same pid and start time, another nonce.
  EXPECT_EQ(ReplayConnections({ImageConnection(0xabc, 0, 0, 5, 1, 10, false),
                               ImageConnection(0xdef, 0, 0, 4, 8, 17, true)})
                .size(),
            2u);
  // The first connection ended with its final census: whatever comes next is not its sequel.
  EXPECT_EQ(ReplayConnections({ImageConnection(0xabc, 0, 0, 5, 1, 10, true),
                               ImageConnection(0xabc, 1, 0, 4, 8, 17, true)})
                .size(),
            2u);
}

}  // namespace
}  // namespace dw::report
