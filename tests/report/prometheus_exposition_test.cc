// Tests of the Prometheus exposition (outputs/prometheus_exposition.h): escaping, numbers, the
// bounded and ordered top sites, stable site labels, enum-style verdicts, a process without
// sites, and families rendered once each. tests/e2e/collect/collect_prometheus.sh has a real
// Prometheus and promtool read what `collect --metrics` serves.
#include "report/outputs/prometheus_exposition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <sstream>
#include <string>

namespace dw::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ProcessLabel Label() {
  ProcessLabel label;
  label.name = "audit-service";
  label.exe = "/opt/svc/bin/audit";
  label.pid = 4242;
  label.started_unix_s = 1796210933;
  return label;
}

SiteReport HeapSite(const std::string& function, int line, int64_t live_bytes, DriftStatus status,
                    double slope_per_hour) {
  SiteReport site;
  site.kind = wire::Kind::kHeap;
  Frame frame;
  frame.function = function;
  frame.file = "audit.c";
  frame.line = line;
  site.frames.push_back(frame);
  site.live_bytes = live_bytes;
  site.live = live_bytes / 100;
  site.finding.status = status;
  site.finding.slope_per_hour = slope_per_hour;
  return site;
}

// The lines of `text` that start with `prefix`.
std::vector<std::string> LinesStarting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(prefix)) lines.push_back(line);
  }
  return lines;
}

std::string Render(const ProcessReport& report, const PrometheusOptions& options = {}) {
  const ProcessSamples samples = SampleProcess(Label(), report, Verdict::kDrift, options);
  CollectorHealth health;
  health.version = "0.1.0";
  return RenderExposition({&samples}, health);
}

TEST(PrometheusExpositionTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue("café"), "café");
  // Invalid UTF-8 (a stray byte, a truncated sequence, an overlong '/', a surrogate) would make
  // Prometheus reject the whole scrape.
  EXPECT_EQ(EscapeLabelValue("a\xff"
                             "b\xc3"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_EQ(EscapeLabelValue("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(EscapeLabelValue("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(PrometheusExpositionTest, FormatsValues) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(18446744073.0), "18446744073");
  EXPECT_EQ(FormatSampleValue(-3), "-3");
  EXPECT_EQ(FormatSampleValue(0.25), "0.25");
  EXPECT_EQ(FormatSampleValue(1e300), "1e+300");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(PrometheusExpositionTest, ProcessWithoutSitesHasTotalsOnly) {
  ProcessReport report;  // as a process watched from /proc: totals, no sites
  report.totals.rss_bytes = 123456789;
  report.totals.fd_count = 17;
  report.totals.thread_count = 4;
  report.census_count = 9;
  const std::string text = Render(report);
  const std::string labels =
      R"x(comm="audit-service",pid="4242",exe="/opt/svc/bin/audit",started="2026-12-02T11:28:53Z")x";
  EXPECT_THAT(text,
              HasSubstr("driftwatch_process_resident_memory_bytes{" + labels + "} 123456789\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_process_open_fds{" + labels + "} 17\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_process_threads{" + labels + "} 4\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_process_censuses_total{" + labels + "} 9\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_process_verdict{" + labels + R"x(,verdict="drift"} 1)x"));
  EXPECT_THAT(text,
              HasSubstr("driftwatch_process_verdict{" + labels + R"x(,verdict="steady"} 0)x"));
  EXPECT_THAT(text, Not(HasSubstr("driftwatch_site_live_objects{")));
}

TEST(PrometheusExpositionTest, KeepsTheTopSitesDriftingFirst) {
  ProcessReport report;
  for (int i = 0; i < 30; ++i) {
    report.groups.push_back(
        HeapSite("churn_" + std::to_string(i), i, 1000 * (i + 1), DriftStatus::kSteady, 0));
  }
  report.groups.push_back(HeapSite("slow_leak", 90, 10, DriftStatus::kDrifting, 3600));
  report.groups.push_back(HeapSite("fast_leak", 91, 20, DriftStatus::kDrifting, 36000));
  const ProcessSamples samples =
      SampleProcess(Label(), report, Verdict::kDrift, PrometheusOptions{4});
  EXPECT_EQ(samples.sites, 4u);
  const std::string text = RenderExposition({&samples}, {});
  const std::vector<std::string> growth =
      LinesStarting(text, "driftwatch_site_growth_bytes_per_second{");
  ASSERT_EQ(growth.size(), 4u);
  EXPECT_THAT(growth[0], HasSubstr(R"x(where="fast_leak (audit.c:91)"} 10)x"));
  EXPECT_THAT(growth[1], HasSubstr(R"x(where="slow_leak (audit.c:90)"} 1)x"));
  EXPECT_THAT(growth[2], HasSubstr(R"x(where="churn_29 (audit.c:29)"} 0)x"));
  EXPECT_THAT(growth[3], HasSubstr(R"x(where="churn_28 (audit.c:28)"} 0)x"));
  // Every status of a site is a series (0 or 1), so the label set does not change with it.
  const std::vector<std::string> verdicts = LinesStarting(text, "driftwatch_site_verdict{");
  ASSERT_EQ(verdicts.size(), 16u);
  EXPECT_THAT(verdicts[2], HasSubstr(R"x(where="fast_leak (audit.c:91)",status="drifting"} 1)x"));
  EXPECT_THAT(verdicts[0], HasSubstr(R"x(where="fast_leak (audit.c:91)",status="steady"} 0)x"));
}

TEST(PrometheusExpositionTest, SiteLabelIsStableAcrossLifetimes) {
  ProcessReport first, second;
  first.groups.push_back(HeapSite("leak", 20, 100, DriftStatus::kDrifting, 1));
  first.groups.back().site_id = 7;
  second.groups.push_back(HeapSite("leak", 20, 900, DriftStatus::kDrifting, 1));
  second.groups.back().site_id = 1234;  // another lifetime numbers its stacks otherwise
  const auto site_label = [](const ProcessReport& report) {
    const std::string line = LinesStarting(Render(report), "driftwatch_site_live_bytes{").at(0);
    const size_t at = line.find("site=\"");
    return line.substr(at, 6 + 16 + 1);
  };
  EXPECT_EQ(site_label(first), site_label(second));
  EXPECT_THAT(site_label(first), testing::MatchesRegex("site=\"[0-9a-f]{16}\""));
}

TEST(PrometheusExpositionTest, FdSiteHasCountsAndTimeToLimit) {
  ProcessReport report;
  SiteReport fds;
  fds.kind = wire::Kind::kFds;
  fds.live = 900;
  fds.finding.status = DriftStatus::kDrifting;
  fds.finding.slope_per_hour = 7200;
  fds.limit = LimitProjection{"RLIMIT_NOFILE", 1024, 900, 62.0};
  report.groups.push_back(fds);
  const std::string text = Render(report);
  EXPECT_THAT(text, HasSubstr(R"x(kind="fds",site=)x"));
  EXPECT_THAT(text, HasSubstr(R"x(where="(no call site: unattributed)"} 900)x"));
  EXPECT_THAT(text, HasSubstr(R"x(where="(no call site: unattributed)"} 2)x"));  // 7200/h
  EXPECT_THAT(text, HasSubstr(R"x(limit="RLIMIT_NOFILE"} 62)x"));
  EXPECT_THAT(text, Not(HasSubstr("driftwatch_site_live_bytes{")));
}

TEST(PrometheusExpositionTest, EachFamilyOnceWithHelpAndType) {
  ProcessReport report;
  report.groups.push_back(HeapSite("leak", 20, 100, DriftStatus::kDrifting, 1));
  const ProcessSamples a = SampleProcess(Label(), report, Verdict::kDrift, {});
  ProcessLabel other = Label();
  other.pid = 4343;
  const ProcessSamples b = SampleProcess(other, report, Verdict::kSteady, {});
  CollectorHealth health;
  health.version = "0.1.0";
  health.connected = 2;
  health.ended = {3, 1, 0};
  const std::string text = RenderExposition({&a, &b}, health);
  EXPECT_EQ(LinesStarting(text, "# TYPE driftwatch_site_live_bytes ").size(), 1u);
  EXPECT_EQ(LinesStarting(text, "# HELP driftwatch_site_live_bytes ").size(), 1u);
  EXPECT_EQ(LinesStarting(text, "driftwatch_site_live_bytes{").size(), 2u);
  // The samples of a family follow its TYPE line, before the next family's HELP.
  const size_t type = text.find("# TYPE driftwatch_site_live_bytes gauge\n");
  const size_t next = text.find("# HELP driftwatch_site_live_objects ");
  ASSERT_NE(type, std::string::npos);
  EXPECT_LT(text.find(R"x(pid="4343")x", type), next);
  EXPECT_THAT(text, HasSubstr("driftwatch_processes_connected 2\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_ended_processes_total{verdict=\"steady\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_ended_processes_total{verdict=\"drift\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("driftwatch_build_info{version=\"0.1.0\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE driftwatch_censuses_received_total counter\n"));
}

}  // namespace
}  // namespace dw::report
