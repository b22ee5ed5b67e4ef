// Tests of MetricsExporter (commands/metrics_exporter.h): what /metrics serves as processes are
// analysed and end. Life-long totals never go backwards when a process's series leave; processes
// watched through /proc (totals, no sites) are served after the connections. Read through the
// real server with cpp-httplib's client.
#include "report/commands/metrics_exporter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "httplib.h"

namespace dw::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ProcessLabel Label(const std::string& name, uint32_t pid) {
  ProcessLabel label;
  label.name = name;
  label.exe = "/usr/bin/" + name;
  label.pid = pid;
  return label;
}

ProcessReport Report(size_t censuses, uint64_t dropped) {
  ProcessReport report;
  report.census_count = censuses;
  report.totals.censuses_dropped = dropped;
  report.totals.rss_bytes = 1 << 20;
  return report;
}

class MetricsExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MetricsExporter>> started =
        MetricsExporter::Start({.host = "127.0.0.1", .port = 0}, {}, "9.9.9");
    ASSERT_TRUE(started.ok()) << started.status();
    exporter_ = std::move(*started);
  }

  // /metrics as a scraper gets it.
  std::string Scrape() {
    httplib::Client client("127.0.0.1", exporter_->port());
    httplib::Result page = client.Get("/metrics");
    EXPECT_TRUE(page);
    if (!page) return "";
    EXPECT_EQ(page->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    return page->body;
  }

  std::unique_ptr<MetricsExporter> exporter_;
};

TEST_F(MetricsExporterTest, ServesHealthBeforeAnyProcess) {
  const std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("driftwatch_build_info{version=\"9.9.9\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_censuses_received_total 0\n"));
}

TEST_F(MetricsExporterTest, TotalsOutliveEndedProcesses) {
  exporter_->Update(0, Label("api", 10), Report(100, 2), Verdict::kSteady);
  exporter_->Update(1, Label("worker", 11), Report(50, 0), Verdict::kDrift);
  CollectorHealth health;
  health.connected = 2;
  exporter_->Publish(health);
  std::string text = Scrape();
  EXPECT_THAT(text, HasSubstr("driftwatch_censuses_received_total 150\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_censuses_dropped_total 2\n"));
  EXPECT_THAT(text, HasSubstr("pid=\"11\""));

  // The worker ends with more censuses than its last analysis saw and a corrupt stream.
  ConnectionRecord record;
  record.census_count = 60;
  record.sequence_gaps = 1;
  record.stream_error = "truncated record";
  record.latest.emplace();
  record.latest->totals.censuses_dropped = 4;
  exporter_->Forget(1, record);
  exporter_->CountEnded(Verdict::kDrift);
  health.connected = 1;
  exporter_->Publish(health);
  text = Scrape();
  EXPECT_THAT(text, Not(HasSubstr("pid=\"11\"")));
  EXPECT_THAT(text, HasSubstr("pid=\"10\""));
  EXPECT_THAT(text, HasSubstr("driftwatch_censuses_received_total 160\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_censuses_dropped_total 6\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_census_sequence_gaps_total 1\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_stream_errors_total 1\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_ended_processes_total{verdict=\"drift\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_processes_connected 1\n"));
}

TEST_F(MetricsExporterTest, WatchedProcessesAfterConnections) {
  exporter_->UpdateWatched(5, Label("gosvc", 5), Report(30, 0), Verdict::kSteady);
  exporter_->Update(7, Label("api", 700), Report(10, 0), Verdict::kSteady);
  exporter_->Publish({});
  std::string text = Scrape();
  const size_t api = text.find("driftwatch_process_resident_memory_bytes{comm=\"api\"");
  const size_t gosvc = text.find("driftwatch_process_resident_memory_bytes{comm=\"gosvc\"");
  ASSERT_NE(api, std::string::npos);
  ASSERT_NE(gosvc, std::string::npos);
  EXPECT_LT(api, gosvc);
  exporter_->ForgetWatched(5);
  exporter_->Publish({});
  text = Scrape();
  EXPECT_THAT(text, Not(HasSubstr("comm=\"gosvc\"")));
  EXPECT_THAT(text, HasSubstr("comm=\"api\""));
}

}  // namespace
}  // namespace dw::report
