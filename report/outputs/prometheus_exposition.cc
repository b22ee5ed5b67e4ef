#include "report/outputs/prometheus_exposition.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "fmt/format.h"
#include "report/analysis/site_groups.h"
#include "report/outputs/report_output.h"

namespace dw::report {
namespace {

struct FamilyInfo {
  const char* name;
  const char* type;
  const char* help;
};

// Indexed by ProcessFamily.
constexpr FamilyInfo kProcessFamilies[] = {
    {"driftwatch_process_start_time_seconds", "gauge",
     "Start time of the process since the Unix epoch."},
    {"driftwatch_process_resident_memory_bytes", "gauge",
     "Resident set size of the process at its latest census."},
    {"driftwatch_process_open_fds", "gauge", "Open file descriptors at the latest census."},
    {"driftwatch_process_threads", "gauge", "Threads of the process at the latest census."},
    {"driftwatch_process_heap_live_bytes", "gauge",
     "Live heap bytes over all sites at the latest census (an estimate in sampled mode)."},
    {"driftwatch_process_timers", "gauge", "Live POSIX timers at the latest census."},
    {"driftwatch_process_censuses_total", "counter",
     "Censuses received from this process lifetime."},
    {"driftwatch_process_censuses_dropped_total", "counter",
     "Censuses the shim of this process could not send (collector absent or slow)."},
    {"driftwatch_process_verdict", "gauge",
     "1 for the process's current verdict (steady, drift, inconclusive), 0 for the others."},
    {"driftwatch_process_time_to_limit_seconds", "gauge",
     "Seconds until a drifting process total (rss, fds, threads) reaches its tightest limit at "
     "its current slope."},
    {"driftwatch_site_live_bytes", "gauge",
     "Live heap bytes of a site (allocation site) at the latest census."},
    {"driftwatch_site_live_objects", "gauge",
     "Live objects of a site at the latest census: heap blocks, fds, threads or timers."},
    {"driftwatch_site_growth_bytes_per_second", "gauge",
     "Slope of a heap site's live bytes over the analysed window."},
    {"driftwatch_site_growth_objects_per_second", "gauge",
     "Slope of an fd, thread or timer site's live count over the analysed window."},
    {"driftwatch_site_verdict", "gauge",
     "1 for the site's current status (steady, warming, drifting, inconclusive), 0 for the "
     "others."},
    {"driftwatch_site_time_to_limit_seconds", "gauge",
     "Seconds until the process reaches its tightest limit for the site's kind at the site's "
     "slope."},
};
static_assert(std::size(kProcessFamilies) == static_cast<size_t>(ProcessFamily::kCount));

constexpr size_t kMaxWhereBytes = 240;  // a demangled template name can run to kilobytes

constexpr Verdict kVerdicts[] = {Verdict::kSteady, Verdict::kDrift, Verdict::kInconclusive};
constexpr DriftStatus kStatuses[] = {DriftStatus::kSteady, DriftStatus::kWarming,
                                     DriftStatus::kDrifting, DriftStatus::kInconclusive};

// FNV-1a, 64 bits: the same key gives the same site label in every process and collector run.
uint64_t StableHash(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// `text` cut to at most `bytes` bytes without splitting a UTF-8 sequence.
std::string_view CutUtf8(std::string_view text, size_t bytes) {
  if (text.size() <= bytes) return text;
  size_t end = bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// The length of the valid UTF-8 sequence at the start of `text`, 0 when it is not one
// (a stray or truncated byte, an overlong form, a surrogate, beyond U+10FFFF).
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&text](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint32_t code = 0, smallest = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, code = lead & 0x1F, smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code = lead & 0x0F, smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code = lead & 0x07, smallest = 0x10000;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i) & 0x3F);
  }
  if (code < smallest || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

// "name{labels} value\n" into one family's lines. `labels` is "" or already rendered.
class SampleWriter {
 public:
  explicit SampleWriter(ProcessSamples& samples) : samples_(samples) {}

  void Add(ProcessFamily family, std::string_view labels, double value) {
    std::string& out = samples_.lines[static_cast<size_t>(family)];
    fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n",
                   kProcessFamilies[static_cast<size_t>(family)].name, labels,
                   FormatSampleValue(value));
  }

 private:
  ProcessSamples& samples_;
};

std::string Label(std::string_view name, std::string_view value) {
  return fmt::format("{}=\"{}\"", name, EscapeLabelValue(value));
}

std::string ProcessLabels(const ProcessLabel& label) {
  return fmt::format("{},{},{},{}", Label("comm", label.name),
                     Label("pid", std::to_string(label.pid)), Label("exe", label.exe),
                     Label("started", FormatUtc(label.started_unix_s, "")));
}

int StatusRank(DriftStatus status) {
  switch (status) {
    case DriftStatus::kDrifting:
      return 0;
    case DriftStatus::kInconclusive:
      return 1;
    case DriftStatus::kWarming:
      return 2;
    case DriftStatus::kSteady:
      return 3;
  }
  return 3;
}

// The sites with series of their own: drifting first (by kind, fastest first), then
// inconclusive and warming, then the largest (live bytes for heap, live count otherwise).
std::vector<const SiteReport*> TopSites(const ProcessReport& report, size_t top) {
  const std::vector<SiteReport>& sites = report.groups.empty() ? report.sites : report.groups;
  std::vector<const SiteReport*> order(sites.size());
  for (size_t i = 0; i < sites.size(); ++i) order[i] = &sites[i];
  const auto size = [](const SiteReport* site) {
    return site->kind == wire::Kind::kHeap ? site->live_bytes : site->live;
  };
  const auto before = [&size](const SiteReport* a, const SiteReport* b) {
    const int rank_a = StatusRank(a->finding.status), rank_b = StatusRank(b->finding.status);
    if (rank_a != rank_b) return rank_a < rank_b;
    if (rank_a == 0) {  // slopes compare within a kind only: one total order, kinds in turn
      if (a->kind != b->kind) return a->kind < b->kind;
      if (a->finding.slope_per_hour != b->finding.slope_per_hour) {
        return a->finding.slope_per_hour > b->finding.slope_per_hour;
      }
    } else if (size(a) != size(b)) {
      return size(a) > size(b);
    }
    return a < b;  // report order: the same sites from one analysis to the next on ties
  };
  const size_t kept = std::min(top, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(kept), order.end(),
                    before);
  order.resize(kept);
  return order;
}

void SampleSite(SampleWriter& out, const std::string& process_labels, const SiteReport& site) {
  const std::string where = site.frames.empty() ? std::string("(no call site: unattributed)")
                                                : site.frames[site.headline].Describe();
  const std::string labels =
      fmt::format("{},{},{},{}", process_labels, Label("kind", KindName(site.kind)),
                  Label("site", fmt::format("{:016x}", StableHash(GroupKey(site)))),
                  Label("where", CutUtf8(where, kMaxWhereBytes)));
  const bool heap = site.kind == wire::Kind::kHeap;
  if (heap) out.Add(ProcessFamily::kSiteLiveBytes, labels, static_cast<double>(site.live_bytes));
  out.Add(ProcessFamily::kSiteLiveObjects, labels, static_cast<double>(site.live));
  out.Add(heap ? ProcessFamily::kSiteGrowthBytes : ProcessFamily::kSiteGrowthObjects, labels,
          site.finding.slope_per_hour / 3600.0);
  for (DriftStatus status : kStatuses) {
    out.Add(ProcessFamily::kSiteVerdict,
            fmt::format("{},{}", labels, Label("status", DriftStatusName(status))),
            site.finding.status == status ? 1 : 0);
  }
  if (site.limit.has_value() && site.limit->time_to_limit_s.has_value()) {
    out.Add(ProcessFamily::kSiteTimeToLimit,
            fmt::format("{},{}", labels, Label("limit", site.limit->name)),
            *site.limit->time_to_limit_s);
  }
}

// Process totals that drift towards a limit (RSS, fds, threads), each once.
void SampleTotalLimits(SampleWriter& out, const std::string& labels, const ProcessReport& report) {
  std::vector<std::string> said;
  const auto add = [&](std::string_view resource, const std::optional<LimitProjection>& limit) {
    if (!limit.has_value() || !limit->time_to_limit_s.has_value()) return;
    if (std::find(said.begin(), said.end(), resource) != said.end()) return;
    said.emplace_back(resource);
    out.Add(
        ProcessFamily::kTotalTimeToLimit,
        fmt::format("{},{},{}", labels, Label("resource", resource), Label("limit", limit->name)),
        *limit->time_to_limit_s);
  };
  for (const TotalTrend& trend : report.total_trends) add(trend.name, trend.limit);
  if (report.rss_finding.has_value()) add("rss", report.rss_finding->limit);
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    const size_t length = Utf8SequenceLength(value.substr(i));
    if (length == 0) {
      out +=
          "\xEF\xBF\xBD";  // U+FFFD: Prometheus rejects a whole scrape over one invalid label value
      ++i;
      continue;
    }
    if (length > 1) {
      out.append(value.substr(i, length));
      i += length;
      continue;
    }
    const char c = value[i++];
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);
}

ProcessSamples SampleProcess(const ProcessLabel& label, const ProcessReport& report,
                             Verdict verdict, const PrometheusOptions& options) {
  ProcessSamples samples;
  SampleWriter out(samples);
  const std::string labels = ProcessLabels(label);
  if (label.started_unix_s > 0) out.Add(ProcessFamily::kStartTime, labels, label.started_unix_s);
  out.Add(ProcessFamily::kRss, labels, static_cast<double>(report.totals.rss_bytes));
  out.Add(ProcessFamily::kFds, labels, report.totals.fd_count);
  out.Add(ProcessFamily::kThreads, labels, report.totals.thread_count);
  out.Add(ProcessFamily::kHeapLive, labels, static_cast<double>(report.heap_live_bytes));
  out.Add(ProcessFamily::kTimers, labels, static_cast<double>(report.timers_live));
  out.Add(ProcessFamily::kCensuses, labels, static_cast<double>(report.census_count));
  out.Add(ProcessFamily::kCensusesDropped, labels,
          static_cast<double>(report.totals.censuses_dropped));
  for (Verdict state : kVerdicts) {
    out.Add(ProcessFamily::kVerdict,
            fmt::format("{},{}", labels, Label("verdict", VerdictName(state))),
            state == verdict ? 1 : 0);
  }
  SampleTotalLimits(out, labels, report);
  const std::vector<const SiteReport*> top = TopSites(report, options.top_sites);
  for (const SiteReport* site : top) SampleSite(out, labels, *site);
  samples.sites = top.size();
  return samples;
}

std::string RenderExposition(const std::vector<const ProcessSamples*>& processes,
                             const CollectorHealth& health) {
  std::string out;
  const auto header = [&out](const char* name, const char* type, const char* help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  for (size_t family = 0; family < std::size(kProcessFamilies); ++family) {
    const FamilyInfo& info = kProcessFamilies[family];
    header(info.name, info.type, info.help);
    for (const ProcessSamples* process : processes) out += process->lines[family];
  }
  const auto single = [&](const char* name, const char* type, const char* help, double value) {
    header(name, type, help);
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, FormatSampleValue(value));
  };
  header("driftwatch_build_info", "gauge", "Always 1; the version of the collector in a label.");
  fmt::format_to(std::back_inserter(out), "driftwatch_build_info{{{}}} 1\n",
                 Label("version", health.version));
  single("driftwatch_start_time_seconds", "gauge",
         "Start time of the collector since the Unix epoch.", health.started_unix_s);
  single("driftwatch_processes_connected", "gauge", "Processes connected to the collector now.",
         static_cast<double>(health.connected));
  header("driftwatch_ended_processes_total", "counter",
         "Processes that ended since the collector started, by their final verdict.");
  for (Verdict verdict : kVerdicts) {
    fmt::format_to(std::back_inserter(out), "driftwatch_ended_processes_total{{{}}} {}\n",
                   Label("verdict", VerdictName(verdict)),
                   health.ended[static_cast<size_t>(verdict)]);
  }
  single("driftwatch_censuses_received_total", "counter",
         "Censuses received from all processes since the collector started.",
         static_cast<double>(health.censuses_received));
  single("driftwatch_censuses_dropped_total", "counter",
         "Censuses the shims reported they could not send (collector absent or slow).",
         static_cast<double>(health.censuses_dropped));
  single("driftwatch_census_sequence_gaps_total", "counter",
         "Censuses sent but never received (gaps in their sequence numbers).",
         static_cast<double>(health.sequence_gaps));
  single("driftwatch_stream_errors_total", "counter",
         "Connections ended by a corrupt or truncated census stream.",
         static_cast<double>(health.stream_errors));
  single("driftwatch_peers_refused_total", "counter",
         "Peers refused by the admission check, once per pid (at most 1024 are counted).",
         static_cast<double>(health.refused));
  single("driftwatch_connections_turned_away_total", "counter",
         "Connections closed unread because the collector had no file descriptor left.",
         static_cast<double>(health.turned_away));
  single("driftwatch_analyses_total", "counter",
         "Analysis passes over the live processes since the collector started.",
         static_cast<double>(health.analyses));
  single("driftwatch_last_analysis_duration_seconds", "gauge",
         "How long the latest analysis pass over the live processes took.",
         health.last_analysis_seconds);
  single("driftwatch_last_analysis_timestamp_seconds", "gauge",
         "When the latest analysis pass ended, since the Unix epoch (0 before the first).",
         health.last_analysis_unix_s);
  return out;
}

}  // namespace dw::report
