#include "report/outputs/report_output.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "report/analysis/drift_analysis.h"
#include "report/analysis/process_analysis.h"
#include "report/outputs/json_writer.h"

namespace dw::report {
namespace {

std::string ModeName(uint16_t mode) {
  if (mode == wire::kModeExact) return "exact";
  if (mode == wire::kModeSampled) return "sampled";
  return fmt::format("mode-{}", mode);
}

std::string DescribeExit(const ExitInfo& exit) {
  if (exit.signaled) {
    const char* name = sigabbrev_np(exit.signal);
    return name != nullptr ? fmt::format("killed by SIG{}", name)
                           : fmt::format("killed by signal {}", exit.signal);
  }
  return fmt::format("exit {}", exit.code);
}

void WriteFrame(JsonWriter& json, const Frame& frame) {
  json.BeginObject();
  json.Key("function");
  json.String(frame.function);
  json.Key("file");
  json.String(frame.file);
  json.Key("line");
  json.Int(frame.line);
  json.Key("module");
  json.String(frame.module);
  json.Key("address");
  json.String(frame.AddressHex());
  json.Key("inlined");
  json.Bool(frame.inlined);
  // Added after v1's first release, as additive fields: enough to symbolise the frame elsewhere
  // (pprof-style module+offset with the build-id), and why it is incomplete here.
  json.Key("module_offset");
  json.String(frame.module.empty() ? std::string() : fmt::format("0x{:x}", frame.module_offset));
  json.Key("build_id");
  json.String(frame.build_id);
  json.Key("module_unloaded");
  json.Bool(frame.module_unloaded);
  json.Key("unresolved");
  json.String(frame.unresolved);
  json.EndObject();
}

// Writes a limit, 0 (unknown or unlimited) as null.
void WriteLimit(JsonWriter& json, const char* key, uint64_t value) {
  json.Key(key);
  if (value == 0) {
    json.Null();
  } else {
    json.UInt(value);
  }
}

void WriteLimits(JsonWriter& json, const std::optional<ProcessLimits>& limits) {
  json.Key("limits");
  if (!limits.has_value()) {
    json.Null();
    return;
  }
  json.BeginObject();
  WriteLimit(json, "nofile_soft", limits->nofile_soft);
  WriteLimit(json, "nofile_hard", limits->nofile_hard);
  WriteLimit(json, "nproc_soft", limits->nproc_soft);
  WriteLimit(json, "pids_max", limits->pids_max);
  WriteLimit(json, "threads_max", limits->threads_max);
  WriteLimit(json, "memory_limit_bytes", limits->memory_limit_bytes);
  WriteLimit(json, "memory_total_bytes", limits->memory_total_bytes);
  WriteLimit(json, "address_space_bytes", limits->address_space_bytes);
  json.EndObject();
}

void WriteStrings(JsonWriter& json, const char* key, const std::vector<std::string>& values) {
  json.Key(key);
  json.BeginArray();
  for (const std::string& value : values) json.String(value);
  json.EndArray();
}

void WriteThreadState(JsonWriter& json, const std::optional<ThreadSiteState>& state) {
  json.Key("thread_states");
  if (!state.has_value()) {
    json.Null();
    return;
  }
  json.BeginObject();
  json.Key("running");
  json.UInt(state->running);
  json.Key("sleeping");
  json.UInt(state->sleeping);
  json.Key("disk_sleeping");
  json.UInt(state->disk_sleeping);
  json.Key("stopped");
  json.UInt(state->stopped);
  json.Key("exited_unjoined");
  json.UInt(state->exited_unjoined);
  json.Key("longest_idle_s");
  json.Double(static_cast<double>(state->longest_idle_ms) / 1000.0);
  json.Key("idle_over_minute");
  json.UInt(state->idle_over_minute);
  json.Key("wchan");
  if (state->wchan.empty()) {
    json.Null();
  } else {
    json.String(state->wchan);
  }
  json.EndObject();
}

std::string LimitValueText(wire::Kind kind, uint64_t value) {
  return kind == wire::Kind::kHeap ? FormatBytes(static_cast<double>(value))
                                   : fmt::format("{}", value);
}

// "RLIMIT_NOFILE 4096 reached in 27.9 days", "... already reached", "no known limit".
std::string LimitClause(wire::Kind kind, const std::optional<LimitProjection>& limit) {
  if (!limit.has_value()) return "no known limit";
  const std::string head = fmt::format("{} {}", limit->name, LimitValueText(kind, limit->value));
  if (limit->time_to_limit_s.has_value()) {
    return fmt::format("{} reached in {}", head, FormatTimeToLimit(*limit->time_to_limit_s));
  }
  return limit->current >= limit->value ? head + " already reached" : head + " not approached";
}

void WriteLimitProjection(JsonWriter& json, const std::optional<LimitProjection>& limit) {
  json.Key("time_to_limit_s");
  if (limit.has_value() && limit->time_to_limit_s.has_value()) {
    json.Double(std::round(*limit->time_to_limit_s * 10) / 10);
  } else {
    json.Null();
  }
  json.Key("limit");
  if (!limit.has_value()) {
    json.Null();
    return;
  }
  json.BeginObject();
  json.Key("name");
  json.String(limit->name);
  json.Key("value");
  json.UInt(limit->value);
  json.EndObject();
}

bool IsSampled(const ProcessReport& process) {
  return process.mode == wire::kModeSampled && process.sample_mean_bytes > 0;
}

void WriteSampleMean(JsonWriter& json, const ProcessReport& process) {
  if (IsSampled(process)) {
    json.UInt(process.sample_mean_bytes);
  } else {
    json.Null();
  }
}

// The slowest leak (bytes/hour) at one heap site that a sampled process's run was long enough
// to show as drifting 9 times in 10 (docs/SAMPLING.md, Poisson term); 0 when not sampled or too
// short to say.
double SampledHeapFloorPerHour(const ProcessReport& process) {
  const std::vector<double>& times = process.series.times();
  if (!IsSampled(process) || times.size() < 2) return 0.0;
  const RobustDriftAnalyzer::Options options;
  const double window_s = (times.back() - times.front()) * (1.0 - options.startup_fraction);
  if (!(window_s > 0)) return 0.0;
  const SamplingNoise noise{.mean_bytes = static_cast<double>(process.sample_mean_bytes)};
  return DetectableRate(noise, 0.0, window_s, times.size(),
                        NormalQuantile(options.min_confidence)) *
         3600.0;
}

// Rounded for the JSON: rates and sample counts are estimates, not exact figures.
double Rounded(double value, double scale) { return std::round(value * scale) / scale; }

// A finding on sampled heap estimates: the sampling rate, the noise floor, and for an
// inconclusive one how long a run would tell.
void WriteEstimate(JsonWriter& json, const DriftFinding& finding) {
  json.Key("judged_on");
  json.String(finding.judged_on_stack ? "stack" : "sum");
  json.Key("estimated");
  json.Bool(finding.estimated);
  if (!finding.estimated) return;
  json.Key("sample_mean_bytes");
  json.Double(finding.sample_mean_bytes);
  json.Key("samples_in_rise");
  json.Double(Rounded(finding.samples_in_rise, 10));
  json.Key("detectable_slope_per_hour");
  json.Double(Rounded(finding.detectable_slope_per_hour, 1));
  json.Key("apparent_slope_per_hour");
  json.Double(Rounded(finding.apparent_slope_per_hour, 1));
  json.Key("needed_run_s");
  if (finding.status == DriftStatus::kInconclusive) {
    json.Double(Rounded(finding.needed_run_s, 1));
  } else {
    json.Null();
  }
}

// The stacks of a group: how many, and the largest (each analysed on its own).
void WriteStacks(JsonWriter& json, const ProcessReport& process, const SiteReport& group) {
  json.Key("stack_count");
  json.UInt(std::max<size_t>(1, group.members.size()));
  json.Key("stacks");
  json.BeginArray();
  // A group of one stack is that stack: the finding's own frames say it all.
  for (const GroupMember& member : group.members) {
    if (group.members.size() < 2) break;
    if (!member.analysed || member.site_index >= process.sites.size()) continue;
    const SiteReport& site = process.sites[member.site_index];
    json.BeginObject();
    json.Key("site_id");
    json.UInt(member.site_id);
    json.Key("live");
    json.Int(member.live);
    json.Key("live_bytes");
    json.Int(member.live_bytes);
    json.Key("growth");
    json.Double(member.growth);
    json.Key("share");
    json.Double(Rounded(member.share, 1e4));
    json.Key("status");
    json.String(DriftStatusName(site.finding.status));
    json.Key("slope_per_hour");
    json.Double(site.finding.slope_per_hour);
    json.Key("confidence");
    json.Double(Rounded(site.finding.confidence, 1e4));
    json.Key("frames");
    json.BeginArray();
    for (const Frame& frame : site.frames) WriteFrame(json, frame);
    json.EndArray();
    json.EndObject();
  }
  json.EndArray();
}

// Rank of a kind in the findings: the counted kinds run into hard limits, so they come first.
int KindRank(wire::Kind kind) { return kind == wire::Kind::kHeap ? 1 : 0; }

// Printable for the terminal: control characters (a corrupt wchan, an odd path) become '?'.
std::string Printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

}  // namespace

std::vector<const SiteReport*> Findings(const ProcessReport& process) {
  std::vector<const SiteReport*> findings;
  for (const SiteReport& group : process.groups) {
    if (group.finding.status != DriftStatus::kSteady) findings.push_back(&group);
  }
  std::stable_sort(findings.begin(), findings.end(), [](const SiteReport* a, const SiteReport* b) {
    const bool a_drifts = a->finding.status == DriftStatus::kDrifting;
    const bool b_drifts = b->finding.status == DriftStatus::kDrifting;
    if (a_drifts != b_drifts) return a_drifts;
    if (KindRank(a->kind) != KindRank(b->kind)) return KindRank(a->kind) < KindRank(b->kind);
    return a->finding.slope_per_hour > b->finding.slope_per_hour;
  });
  return findings;
}

std::string FormatBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double magnitude = std::fabs(bytes);
  size_t unit = 0;
  while (magnitude >= 1024 && unit + 1 < std::size(kUnits)) {
    magnitude /= 1024;
    ++unit;
  }
  const char* sign = bytes < 0 ? "-" : "";
  if (unit == 0) return fmt::format("{}{:.0f} B", sign, magnitude);
  return fmt::format("{}{:.1f} {}", sign, magnitude, kUnits[unit]);
}

std::string FormatCount(double count) {
  static constexpr const char* kSuffixes[] = {"", "k", "M", "G", "T"};
  double magnitude = std::fabs(count);
  const char* sign = count < 0 ? "-" : "";
  if (magnitude < 10) return fmt::format("{}{:.1f}", sign, magnitude);
  if (magnitude < 1000) return fmt::format("{}{:.0f}", sign, magnitude);
  size_t suffix = 0;
  while (magnitude >= 999.95 && suffix + 1 < std::size(kSuffixes)) {
    magnitude /= 1000;
    ++suffix;
  }
  return fmt::format("{}{:.1f}{}", sign, magnitude, kSuffixes[suffix]);
}

std::string FormatSlope(double slope_per_hour, const std::string& unit) {
  const char* sign = slope_per_hour >= 0 ? "+" : "";
  if (unit == "bytes") return fmt::format("{}{}/h", sign, FormatBytes(slope_per_hour));
  return fmt::format("{}{}/h", sign, FormatCount(slope_per_hour));
}

double NowUnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string FormatUtc(double unix_s, std::string_view unknown) {
  if (unix_s <= 0) return std::string(unknown);
  const time_t seconds = static_cast<time_t>(unix_s);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string FormatLifetime(double started_unix_s, double now_unix_s) {
  if (started_unix_s <= 0 || now_unix_s < started_unix_s) return "?";
  return FormatDuration(static_cast<uint64_t>((now_unix_s - started_unix_s) * 1000));
}

std::string FormatDuration(uint64_t milliseconds) {
  if (milliseconds < 1000) return fmt::format("{}ms", milliseconds);
  const uint64_t seconds = milliseconds / 1000;
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  if (seconds < 86400) return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
  return fmt::format("{}d{:02}h", seconds / 86400, seconds % 86400 / 3600);
}

std::string DescribeThreadState(const ThreadSiteState& state) {
  const uint64_t total = state.Total();
  const std::string wchan = Printable(state.wchan);
  // The wait channel is where most blocked threads sleep: name it with the larger blocked group.
  const bool wchan_on_sleeping = !wchan.empty() && state.sleeping >= state.disk_sleeping;
  const bool wchan_on_disk = !wchan.empty() && !wchan_on_sleeping;
  const std::pair<uint64_t, std::string> parts[] = {
      {state.running, "running"},
      {state.sleeping, wchan_on_sleeping ? "sleeping in " + wchan : "sleeping"},
      {state.disk_sleeping,
       wchan_on_disk ? "in uninterruptible sleep in " + wchan : "in uninterruptible sleep"},
      {state.stopped, "stopped"},
      {state.exited_unjoined, "exited but never joined"},
  };
  std::string text = total == 1 ? std::string("1 thread") : fmt::format("{} threads", total);
  std::vector<std::string> present;
  for (const auto& [count, label] : parts) {
    if (count == 0) continue;
    if (count == total) {
      present = {total == 1 ? label : "all " + label};
      break;
    }
    present.push_back(fmt::format("{} {}", count, label));
  }
  if (!present.empty()) {
    text += present.size() == 1 ? ", " : ": ";
    for (size_t i = 0; i < present.size(); ++i) text += (i > 0 ? ", " : "") + present[i];
  }
  if (state.idle_over_minute > 0) {
    text += state.idle_over_minute == total && total > 1
                ? std::string("; all idle over a minute")
                : fmt::format("; {} idle over a minute", state.idle_over_minute);
    text += fmt::format(", longest {}", FormatDuration(state.longest_idle_ms));
  } else if (state.longest_idle_ms >= 1000) {
    text += fmt::format("; longest idle {}", FormatDuration(state.longest_idle_ms));
  }
  return text;
}

std::string FindingDetail(const SiteReport& site) {
  std::string text;
  switch (site.kind) {
    case wire::Kind::kHeap:
      text = fmt::format("{} block{}", site.live, site.live == 1 ? "" : "s");
      break;
    case wire::Kind::kFds:
      for (const std::string& type : site.fd_types) text += (text.empty() ? "" : ",") + type;
      break;
    case wire::Kind::kTimers:
      for (const std::string& notify : site.timer_notify) {
        text += (text.empty() ? "notify=" : ",") + notify;
      }
      break;
    case wire::Kind::kThreads:
      if (site.thread_state.has_value()) {
        const ThreadSiteState& state = *site.thread_state;
        const uint64_t total = state.Total();
        const std::pair<uint32_t, const char*> states[] = {
            {state.running, "running"},
            {state.sleeping, "sleeping"},
            {state.disk_sleeping, "disk_sleeping"},
            {state.stopped, "stopped"},
            {state.exited_unjoined, "exited_unjoined"}};
        text = "mixed";
        for (const auto& [count, name] : states) {
          if (total > 0 && count == total) text = name;
        }
        if (total == 0) text.clear();
      }
      break;
  }
  return text.empty() ? "-" : text;
}

std::string ProjectLimit(const ProcessReport& process, const SiteReport& site) {
  const std::optional<LimitProjection> projection =
      ProjectToLimit(site.kind, process.totals, process.limits, site.finding.slope_per_hour);
  if (!projection.has_value() || !projection->time_to_limit_s.has_value()) return "";
  const double ms = *projection->time_to_limit_s * 1000.0;
  if (!(ms < 1e15)) return "";
  return fmt::format("reaches {} ({}) in ~{} at this rate", projection->name,
                     LimitValueText(site.kind, projection->value),
                     FormatDuration(static_cast<uint64_t>(ms)));
}

std::string FormatTimeToLimit(double seconds) {
  if (seconds < 120) return fmt::format("{:.0f} s", seconds);
  if (seconds < 2 * 3600) return fmt::format("{:.0f} min", seconds / 60);
  if (seconds < 48 * 3600) return fmt::format("{:.1f} hours", seconds / 3600);
  return fmt::format("{:.1f} days", seconds / 86400);
}

std::string FormatRatePerMinute(double bytes_per_hour) {
  return FormatBytes(bytes_per_hour / 60.0) + "/min";
}

std::string SamplingSentence(const DriftFinding& finding) {
  if (finding.status != DriftStatus::kInconclusive || !finding.estimated) return "";
  const double ms = finding.needed_run_s * 1000.0;
  return fmt::format(
      "at {} sampling, a leak of {} needs ~{} to detect", FormatBytes(finding.sample_mean_bytes),
      FormatRatePerMinute(finding.apparent_slope_per_hour),
      ms < 1e15 ? FormatDuration(static_cast<uint64_t>(ms)) : std::string("forever"));
}

std::string FindingSentence(const SiteReport& site) {
  if (site.finding.status == DriftStatus::kInconclusive) {
    return fmt::format(
        "{} (estimated): rose {} by {:.1f} samples' worth, too few to tell a leak from chance; {}",
        KindName(site.kind), FormatSlope(site.finding.apparent_slope_per_hour, site.unit),
        site.finding.samples_in_rise, SamplingSentence(site.finding));
  }
  std::string text =
      fmt::format("{}{}: {}", KindName(site.kind), site.finding.estimated ? " (estimated)" : "",
                  FormatSlope(site.finding.slope_per_hour, site.unit));
  if (site.finding.within_budget && site.budget_per_hour.has_value()) {
    return text + fmt::format(", within the budget of {}",
                              FormatSlope(*site.budget_per_hour, site.unit).substr(1));
  }
  if (site.finding.status == DriftStatus::kWarming) {
    return text + ", slowing towards a plateau after the warm-up (not projected)";
  }
  return text + ", " + LimitClause(site.kind, site.limit);
}

std::string TotalTrendSentence(const TotalTrend& trend) {
  const char* unit = trend.kind == wire::Kind::kHeap ? "bytes" : "count";
  return fmt::format("{} (process total): {}, {}", trend.name,
                     FormatSlope(trend.finding.slope_per_hour, unit),
                     LimitClause(trend.kind, trend.limit));
}

std::string RssSentence(const RssFinding& finding, double sampled_heap_floor_per_hour) {
  const std::string heap =
      finding.heap_slope_per_hour > 0 &&
              finding.heap_slope_per_hour >= 0.01 * finding.slope_per_hour
          ? fmt::format("grows only {}", FormatSlope(finding.heap_slope_per_hour, "bytes"))
          : std::string("is flat");
  if (sampled_heap_floor_per_hour > 0) {
    // The heap is sampled: growth the estimate cannot resolve yet may well be the heap's, so
    // the sentence must not blame memory outside malloc.
    return fmt::format(
        "RSS grows {} while the sampled heap estimate {}: heap growth slower than ~{} per site "
        "is not resolved by sampling in a run this long, so this may be a heap leak (run longer, "
        "with a smaller --sample-bytes, or in exact mode), fragmentation, or memory outside "
        "malloc; {}",
        FormatSlope(finding.slope_per_hour, "bytes"), heap,
        FormatRatePerMinute(sampled_heap_floor_per_hour),
        LimitClause(wire::Kind::kHeap, finding.limit));
  }
  return fmt::format(
      "RSS grows {} while the tracked heap {}: fragmentation or memory outside malloc (mmap, "
      "thread stacks, a custom allocator); {}",
      FormatSlope(finding.slope_per_hour, "bytes"), heap,
      LimitClause(wire::Kind::kHeap, finding.limit));
}

namespace {

std::string InconclusiveReason(const RunResult& result) {
  size_t unresolved = 0;
  for (const ProcessReport& process : result.processes) {
    for (const SiteReport* group : Findings(process)) {
      unresolved += group->finding.status == DriftStatus::kInconclusive ? 1 : 0;
    }
  }
  if (unresolved > 0) {
    return fmt::format(
        "{} sampled heap site{} rose by too few samples to tell a leak from chance (listed "
        "below: run longer or sample more often)",
        unresolved, unresolved == 1 ? "" : "s");
  }
  if (!result.unheard.empty()) {
    return fmt::format("{} process{} of the run never sent a census (listed below)",
                       result.unheard.size(), result.unheard.size() == 1 ? "" : "es");
  }
  return result.processes.empty()
             ? "no census arrived (the shim did not load, or the command ended at once)"
             : "too few censuses to judge (run longer or lower --interval)";
}

// Processes the collector did not hear from, and connections it refused or turned away.
void PrintUnheard(const RunResult& result, std::FILE* out) {
  if (!result.unheard.empty()) {
    fmt::print(out, "  not heard from ({}): their resources are not in this report\n",
               result.unheard.size());
    for (const UnheardProcess& process : result.unheard) {
      fmt::print(out, "    pid {} uid {} {}: {}\n", process.pid, process.uid, process.exe,
                 process.reason);
    }
  }
  if (result.turned_away > 0) {
    fmt::print(out,
               "  warning: {} census connection{} turned away: driftwatch ran out of file "
               "descriptors (raise 'ulimit -n')\n",
               result.turned_away, result.turned_away == 1 ? " was" : "s were");
  }
  if (!result.refused.empty()) {
    fmt::print(out, "  warning: census connections refused from {} process{} not of the run:",
               result.refused.size(), result.refused.size() == 1 ? "" : "es");
    constexpr size_t kMaxListed = 5;
    for (size_t i = 0; i < result.refused.size() && i < kMaxListed; ++i) {
      const PeerInfo& peer = result.refused[i];
      fmt::print(out, "{} pid {} uid {} {}", i == 0 ? "" : ",", peer.pid, peer.uid, peer.exe);
    }
    fmt::print(out, "{}\n", result.refused.size() > kMaxListed ? ", ..." : "");
  }
}

void WriteUnheardJson(const RunResult& result, JsonWriter& json) {
  json.Key("notes");
  json.BeginArray();
  for (const std::string& note : result.notes) json.String(note);
  json.EndArray();
  json.Key("unheard_processes");
  json.BeginArray();
  for (const UnheardProcess& process : result.unheard) {
    json.BeginObject();
    json.Key("pid");
    json.Int(process.pid);
    json.Key("uid");
    json.UInt(process.uid);
    json.Key("exe");
    json.String(process.exe);
    json.Key("reason");
    json.String(process.reason);
    json.EndObject();
  }
  json.EndArray();
  json.Key("refused_connections");
  json.BeginArray();
  for (const PeerInfo& peer : result.refused) {
    json.BeginObject();
    json.Key("pid");
    json.Int(peer.pid);
    json.Key("uid");
    json.UInt(peer.uid);
    json.Key("exe");
    json.String(peer.exe);
    json.EndObject();
  }
  json.EndArray();
  json.Key("turned_away_connections");
  json.UInt(result.turned_away);
}

}  // namespace

std::string RenderVerdictJson(const RunResult& result) {
  JsonWriter json;
  json.BeginObject();
  json.Key("schema");
  json.String(kVerdictSchema);
  json.Key("command");
  json.BeginArray();
  for (const std::string& arg : result.command) json.String(arg);
  json.EndArray();
  json.Key("duration_s");
  json.Double(std::round(result.duration_s * 1000) / 1000);
  json.Key("interval_ms");
  json.UInt(result.interval_ms);
  json.Key("mode");
  json.String(ModeName(result.processes.empty() ? wire::kModeExact : result.processes[0].mode));
  json.Key("sample_mean_bytes");
  if (result.processes.empty()) {
    json.Null();
  } else {
    WriteSampleMean(json, result.processes[0]);
  }
  json.Key("verdict");
  json.String(VerdictName(result.verdict));
  json.Key("processes");
  json.BeginArray();
  for (const ProcessReport& process : result.processes) {
    json.BeginObject();
    json.Key("pid");
    json.UInt(process.identity.pid);
    json.Key("ppid");
    json.UInt(process.identity.ppid);
    json.Key("exe");
    json.String(process.identity.exe);
    json.Key("exit");
    // Only the direct child's exit status is known to us; other processes get null.
    if (process.exit.has_value()) {
      json.BeginObject();
      json.Key(process.exit->signaled ? "signal" : "code");
      json.Int(process.exit->signaled ? process.exit->signal : process.exit->code);
      json.EndObject();
    } else {
      json.Null();
    }
    json.Key("totals");
    json.BeginObject();
    json.Key("rss_bytes");
    json.UInt(process.totals.rss_bytes);
    json.Key("fds");
    json.UInt(process.totals.fd_count);
    json.Key("threads");
    json.UInt(process.totals.thread_count);
    json.Key("heap_live_bytes");
    json.Int(process.heap_live_bytes);
    json.Key("timers_live");
    json.Int(process.timers_live);
    json.EndObject();
    WriteLimits(json, process.limits);
    // Added: how heap figures were taken, and how many stacks the groups stand for.
    json.Key("mode");
    json.String(ModeName(process.mode));
    json.Key("sample_mean_bytes");
    WriteSampleMean(json, process);
    json.Key("heap_estimated");
    json.Bool(IsSampled(process));
    json.Key("heap_detectable_slope_per_hour");
    if (const double floor = SampledHeapFloorPerHour(process); floor > 0) {
      json.Double(Rounded(floor, 1));
    } else {
      json.Null();
    }
    json.Key("stack_count");
    json.UInt(process.sites.size());
    json.Key("site_count");
    json.UInt(process.groups.size());
    const auto write_finding = [&](const SiteReport* site) {
      json.BeginObject();
      json.Key("kind");
      json.String(KindName(site->kind));
      json.Key("status");
      json.String(DriftStatusName(site->finding.status));
      json.Key("live");
      json.Int(site->live);
      json.Key("live_bytes");
      json.Int(site->live_bytes);
      json.Key("slope_per_hour");
      json.Double(site->finding.slope_per_hour);
      json.Key("unit");
      json.String(site->unit);
      switch (site->kind) {
        case wire::Kind::kFds:
          WriteStrings(json, "fd_types", site->fd_types);
          break;
        case wire::Kind::kTimers:
          WriteStrings(json, "timer_notify", site->timer_notify);
          break;
        case wire::Kind::kThreads:
          WriteThreadState(json, site->thread_state);
          break;
        case wire::Kind::kHeap:
          break;
      }
      json.Key("frames");
      json.BeginArray();
      for (const Frame& frame : site->frames) WriteFrame(json, frame);
      json.EndArray();
      // Added fields go last, after the ones consumers of the first schema already read.
      json.Key("confidence");
      json.Double(std::round(site->finding.confidence * 1e4) / 1e4);
      WriteLimitProjection(json, site->limit);
      json.Key("detail");
      json.String(FindingSentence(*site));
      if (site->budget_per_hour.has_value()) {
        json.Key("budget_per_hour");
        json.Double(*site->budget_per_hour);
      }
      WriteEstimate(json, site->finding);
      WriteStacks(json, process, *site);
      json.EndObject();
    };
    json.Key("findings");
    json.BeginArray();
    for (const SiteReport* site : Findings(process)) write_finding(site);
    json.EndArray();
    // Growth a --budget accepted: steady for the verdict, but its rate stays on record.
    json.Key("within_budget");
    json.BeginArray();
    for (const SiteReport& group : process.groups) {
      if (group.finding.within_budget) write_finding(&group);
    }
    json.EndArray();
    json.Key("total_trends");
    json.BeginArray();
    for (const TotalTrend& trend : process.total_trends) {
      json.BeginObject();
      json.Key("total");
      json.String(trend.name);
      json.Key("status");
      json.String(DriftStatusName(trend.finding.status));
      json.Key("slope_per_hour");
      json.Double(trend.finding.slope_per_hour);
      json.Key("unit");
      json.String(trend.kind == wire::Kind::kHeap ? "bytes" : "count");
      json.Key("confidence");
      json.Double(std::round(trend.finding.confidence * 1e4) / 1e4);
      WriteLimitProjection(json, trend.limit);
      json.Key("detail");
      json.String(TotalTrendSentence(trend));
      json.EndObject();
    }
    json.EndArray();
    json.Key("rss_finding");
    if (process.rss_finding.has_value()) {
      const RssFinding& rss = *process.rss_finding;
      json.BeginObject();
      json.Key("status");
      json.String(DriftStatusName(rss.status));
      json.Key("slope_per_hour");
      json.Double(rss.slope_per_hour);
      json.Key("heap_slope_per_hour");
      json.Double(rss.heap_slope_per_hour);
      json.Key("confidence");
      json.Double(std::round(rss.confidence * 1e4) / 1e4);
      WriteLimitProjection(json, rss.limit);
      json.Key("detail");
      json.String(RssSentence(rss, SampledHeapFloorPerHour(process)));
      json.EndObject();
    } else {
      json.Null();
    }
    json.EndObject();
  }
  json.EndArray();
  WriteUnheardJson(result, json);
  json.EndObject();
  return json.str() + "\n";
}

absl::Status WriteVerdictJson(const RunResult& result, const std::string& path) {
  const std::string text = RenderVerdictJson(result);
  const std::string temporary = path + ".tmp";
  std::FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", temporary, ": ", std::strerror(errno)));
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed) {
    std::remove(temporary.c_str());
    return absl::DataLossError(
        absl::StrCat("cannot write ", temporary, ": ", std::strerror(errno)));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return absl::PermissionDeniedError(
        absl::StrCat("cannot rename ", temporary, " to ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

namespace {

// Heap figures of a sampled process are estimates: say so, with the rate, and the slowest leak
// at one site that a run of this length can show (docs/SAMPLING.md).
void PrintSamplingNote(const ProcessReport& process, std::FILE* out) {
  const double floor = SampledHeapFloorPerHour(process);
  fmt::print(out, "  heap figures are estimates (sampled mode, one sample per {} on average){}\n",
             FormatBytes(static_cast<double>(process.sample_mean_bytes)),
             floor > 0 ? fmt::format("; in a run this long, a leak at one site needs at least {} "
                                     "to be seen",
                                     FormatRatePerMinute(floor))
                       : std::string());
}

// A group of several stacks: how many, and the largest ones, each with its callers.
void PrintMembers(const ProcessReport& process, const SiteReport& group, std::FILE* out) {
  if (group.members.size() < 2) return;
  const bool bytes = group.kind == wire::Kind::kHeap;
  fmt::print(out,
             "{:>10}{} stacks allocate here; the largest (growth, share of live, own status, "
             "callers from where they part from the stack below):\n",
             "", group.members.size());
  for (const GroupMember& member : group.members) {
    if (!member.analysed || member.site_index >= process.sites.size()) continue;
    const SiteReport& site = process.sites[member.site_index];
    // Stacks of one site share their innermost frames: show where this one differs from the
    // group's own stack (printed below), so that recursive callers can be told apart.
    size_t first = site.headline + 1;
    while (first < site.frames.size() && first < group.frames.size() &&
           site.frames[first].address == group.frames[first].address &&
           site.frames[first].inlined == group.frames[first].inlined) {
      ++first;
    }
    if (first >= site.frames.size()) first = site.headline + 1;
    std::string callers = first > site.headline + 1 ? fmt::format("#{} ", first) : "";
    constexpr size_t kCallers = 3;
    for (size_t f = first; f < site.frames.size() && f < first + kCallers; ++f) {
      callers += (f > first ? " < " : "") + site.frames[f].Describe();
    }
    fmt::print(out, "{:>12}{:>11} {:>4.0f}%  {:<9} {}\n", "",
               bytes ? FormatBytes(member.growth) : FormatCount(member.growth), member.share * 100,
               DriftStatusName(site.finding.status),
               callers.empty() ? std::string("(no callers)") : callers);
  }
}

}  // namespace

void PrintTerminalReport(const RunResult& result, std::FILE* out, size_t max_sites) {
  size_t drifting = 0, warming = 0, processes_drifting = 0;
  for (const ProcessReport& process : result.processes) {
    bool any = false;
    for (const SiteReport* site : Findings(process)) {
      if (site->finding.status == DriftStatus::kDrifting) {
        ++drifting;
        any = true;
      } else if (site->finding.status == DriftStatus::kWarming) {
        ++warming;
      }
    }
    processes_drifting += any ? 1 : 0;
  }
  switch (result.verdict) {
    case Verdict::kDrift:
      fmt::print(out, "driftwatch: DRIFT: {} site{} growing in {} of {} process{}\n", drifting,
                 drifting == 1 ? "" : "s", processes_drifting, result.processes.size(),
                 result.processes.size() == 1 ? "" : "es");
      break;
    case Verdict::kSteady: {
      // Sampled heaps are steady only down to what the run could see: say so on the verdict.
      double floor = 0;
      for (const ProcessReport& process : result.processes) {
        floor = std::max(floor, SampledHeapFloorPerHour(process));
      }
      fmt::print(out, "driftwatch: steady: no site keeps growing ({} process{}){}\n",
                 result.processes.size(), result.processes.size() == 1 ? "" : "es",
                 floor > 0 ? fmt::format("; sampled heap: leaks below ~{} per site are too slow "
                                         "for a run this long to see (docs/SAMPLING.md)",
                                         FormatRatePerMinute(floor))
                           : std::string());
      break;
    }
    case Verdict::kInconclusive:
      fmt::print(out, "driftwatch: inconclusive: {}\n", InconclusiveReason(result));
      break;
  }
  for (const std::string& note : result.notes) fmt::print(out, "  note: {}\n", note);
  PrintUnheard(result, out);
  fmt::print(out, "  command ran {:.1f} s, census interval {} ms, {}{}\n", result.duration_s,
             result.interval_ms, DescribeExit(result.child_exit),
             result.ended_by_us ? " (stopped by driftwatch)" : "");
  if (result.child_failed) {
    fmt::print(out, "  the command failed before the run ended: {}\n",
               DescribeExit(result.child_exit));
  }

  // Processes with something to say come first, then the command itself; a run that forked or
  // exec'd many short-lived helpers summarises the quiet ones instead of listing each.
  std::vector<const ProcessReport*> order;
  for (const ProcessReport& process : result.processes) order.push_back(&process);
  std::stable_sort(order.begin(), order.end(), [&](const ProcessReport* a, const ProcessReport* b) {
    const auto rank = [&](const ProcessReport* p) {
      return Findings(*p).empty()
                 ? (p->identity.pid == static_cast<uint32_t>(result.child_pid) ? 1 : 2)
                 : 0;
    };
    return rank(a) < rank(b);
  });
  constexpr size_t kMaxQuietProcesses = 8;
  const bool list_all = order.size() <= kMaxQuietProcesses;
  std::map<std::string, size_t> quiet_by_exe;
  const auto print_process = [&](const ProcessReport& process) {
    fmt::print(out,
               "\nprocess {} {}{}: {} census{}, rss {}, fds {}, threads {}, heap live {}{}{}\n",
               process.identity.pid, process.identity.exe,
               process.exit.has_value() ? fmt::format(" ({})", DescribeExit(*process.exit)) : "",
               process.census_count, process.census_count == 1 ? "" : "es",
               FormatBytes(static_cast<double>(process.totals.rss_bytes)), process.totals.fd_count,
               process.totals.thread_count, IsSampled(process) ? "~" : "",
               FormatBytes(static_cast<double>(process.heap_live_bytes)),
               process.timers_live != 0 ? fmt::format(", timers {}", process.timers_live) : "");
    if (IsSampled(process)) PrintSamplingNote(process, out);
    if (process.limits.has_value()) {
      const ProcessLimits& limits = *process.limits;
      std::vector<std::string> known;
      const auto add = [&](uint64_t value, const char* name, bool bytes) {
        if (value == 0) return;
        known.push_back(fmt::format(
            "{} {}", name,
            bytes ? FormatBytes(static_cast<double>(value)) : fmt::format("{}", value)));
      };
      add(limits.nofile_soft, "nofile", false);
      add(limits.nproc_soft, "nproc", false);
      add(limits.pids_max, "pids.max", false);
      add(limits.threads_max, "threads-max", false);
      add(limits.memory_limit_bytes, "memory limit", true);
      add(limits.memory_total_bytes, "memory", true);
      add(limits.address_space_bytes, "address space", true);
      if (!known.empty()) {
        std::string line;
        for (const std::string& item : known) line += (line.empty() ? "" : ", ") + item;
        fmt::print(out, "  limits: {}\n", line);
      }
    }
    if (!process.stream_error.empty()) {
      fmt::print(out, "  warning: census stream: {}\n", process.stream_error);
    }
    if (process.sequence_gaps > 0) {
      fmt::print(out, "  warning: {} census{} dropped by the shim\n", process.sequence_gaps,
                 process.sequence_gaps == 1 ? "" : "es");
    }
    if (process.totals.sites_overflowed > 0 || process.totals.table_overflowed > 0) {
      fmt::print(out, "  warning: shim tables overflowed ({} unattributed, {} untracked)\n",
                 process.totals.sites_overflowed, process.totals.table_overflowed);
    }
    for (const TotalTrend& trend : process.total_trends) {
      fmt::print(out, "  total   {}\n", TotalTrendSentence(trend));
    }
    if (process.rss_finding.has_value()) {
      fmt::print(out, "  rss     {:<9} {}\n", DriftStatusName(process.rss_finding->status),
                 RssSentence(*process.rss_finding, SampledHeapFloorPerHour(process)));
    }
    for (const SiteReport& site : process.groups) {
      if (!site.finding.within_budget) continue;
      fmt::print(out, "  within budget: {} at {}\n", FindingSentence(site),
                 site.frames.empty() ? std::string("(unattributed)")
                                     : site.frames[site.headline].Describe());
    }
    const std::vector<const SiteReport*> findings = Findings(process);
    if (findings.empty()) {
      if (!process.heap_total_finding.enough_samples) {
        fmt::print(out, "  too few censuses to judge\n");
      } else {
        fmt::print(out, "  no growing site\n");
      }
      return;
    }
    fmt::print(out, "  {:<7} {:<9} {:>14} {:>6} {:>11} {:>10}  {:<14} {}\n", "KIND", "STATUS",
               "SLOPE", "CONF", "LIVE", "TO LIMIT", "DETAIL", "WHERE");
    for (size_t i = 0; i < findings.size() && i < max_sites; ++i) {
      const SiteReport& site = *findings[i];
      const std::string where = site.frames.empty() ? std::string("(unattributed)")
                                                    : site.frames[site.headline].Describe();
      const std::string live = site.kind == wire::Kind::kHeap
                                   ? (site.finding.estimated ? "~" : "") +
                                         FormatBytes(static_cast<double>(site.live_bytes))
                                   : fmt::format("{}", site.live);
      const std::string to_limit = site.limit.has_value() && site.limit->time_to_limit_s.has_value()
                                       ? FormatDuration(static_cast<uint64_t>(
                                             std::min(*site.limit->time_to_limit_s * 1000.0, 1e15)))
                                       : std::string("-");
      // Rounded down and capped below 100%, so that 99.96% (or a p-value too small for a double)
      // does not read as certainty.
      const std::string confidence =
          fmt::format("{:.1f}%", std::min(99.9, std::floor(site.finding.confidence * 1000) / 10));
      fmt::print(out, "  {:<7} {:<9} {:>14} {:>6} {:>11} {:>10}  {:<14} {}\n", KindName(site.kind),
                 DriftStatusName(site.finding.status),
                 FormatSlope(site.finding.slope_per_hour, site.unit), confidence, live, to_limit,
                 FindingDetail(site), where);
      if (!site.frames.empty() && !site.frames[site.headline].unresolved.empty()) {
        // A frame without a name or a line says why, so the user knows what to install.
        fmt::print(out, "{:>10}({})\n", "", site.frames[site.headline].unresolved);
      }
      if (site.thread_state.has_value() && site.thread_state->Total() > 0) {
        fmt::print(out, "{:>10}{}\n", "", DescribeThreadState(*site.thread_state));
      }
      if (site.finding.status == DriftStatus::kDrifting) {
        if (std::string projection = ProjectLimit(process, site); !projection.empty()) {
          fmt::print(out, "{:>10}{}\n", "", projection);
        }
      }
      if (std::string sampling = SamplingSentence(site.finding); !sampling.empty()) {
        fmt::print(out, "{:>10}rose by {:.1f} samples' worth: {}\n", "",
                   site.finding.samples_in_rise, sampling);
      }
      PrintMembers(process, site, out);
      // The stack below the headline frame, i.e. who called it.
      constexpr size_t kMaxCallers = 12;
      for (size_t f = site.headline + 1; f < site.frames.size() && f <= site.headline + kMaxCallers;
           ++f) {
        const Frame& frame = site.frames[f];
        fmt::print(out, "{:>10}#{} {}\n", "", f, frame.Describe());
      }
    }
    if (findings.size() > max_sites) {
      fmt::print(out, "  ... and {} more (see --json)\n", findings.size() - max_sites);
    }
  };
  for (const ProcessReport* process : order) {
    const bool shown = list_all || !Findings(*process).empty() ||
                       process->identity.pid == static_cast<uint32_t>(result.child_pid);
    if (shown) {
      print_process(*process);
    } else {
      ++quiet_by_exe[process->identity.exe];
    }
  }
  if (!quiet_by_exe.empty()) {
    size_t quiet = 0;
    std::string which;
    for (const auto& [exe, count] : quiet_by_exe) {
      quiet += count;
      which += fmt::format("{}{} x{}", which.empty() ? "" : ", ", exe, count);
    }
    fmt::print(out, "\n{} more process{} with no growing site: {}\n", quiet, quiet == 1 ? "" : "es",
               which);
  }
}

}  // namespace dw::report
