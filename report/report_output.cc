#include "report/report_output.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "report/json_writer.h"

namespace dw::report {
namespace {

std::string ModeName(uint16_t mode) {
  if (mode == wire::kModeExact) return "exact";
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
  json.EndObject();
}

}  // namespace

std::vector<const SiteReport*> Findings(const ProcessReport& process) {
  std::vector<const SiteReport*> findings;
  for (const SiteReport& site : process.sites) {
    if (site.finding.status != DriftStatus::kSteady) findings.push_back(&site);
  }
  std::stable_sort(findings.begin(), findings.end(), [](const SiteReport* a, const SiteReport* b) {
    const bool a_drifts = a->finding.status == DriftStatus::kDrifting;
    const bool b_drifts = b->finding.status == DriftStatus::kDrifting;
    if (a_drifts != b_drifts) return a_drifts;
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

std::string FormatSlope(double slope_per_hour, const std::string& unit) {
  const char* sign = slope_per_hour >= 0 ? "+" : "";
  if (unit == "bytes") return fmt::format("{}{}/h", sign, FormatBytes(slope_per_hour));
  return fmt::format("{}{:.1f}/h", sign, slope_per_hour);
}

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
    json.EndObject();
    json.Key("findings");
    json.BeginArray();
    for (const SiteReport* site : Findings(process)) {
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
      json.Key("frames");
      json.BeginArray();
      for (const Frame& frame : site->frames) WriteFrame(json, frame);
      json.EndArray();
      json.EndObject();
    }
    json.EndArray();
    json.EndObject();
  }
  json.EndArray();
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

void PrintTerminalReport(const RunResult& result, std::FILE* out, size_t max_sites) {
  size_t drifting = 0, warming = 0, processes_drifting = 0;
  for (const ProcessReport& process : result.processes) {
    bool any = false;
    for (const SiteReport* site : Findings(process)) {
      if (site->finding.status == DriftStatus::kDrifting) {
        ++drifting;
        any = true;
      } else {
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
    case Verdict::kSteady:
      fmt::print(out, "driftwatch: steady: no site keeps growing ({} process{})\n",
                 result.processes.size(), result.processes.size() == 1 ? "" : "es");
      break;
    case Verdict::kInconclusive:
      fmt::print(out, "driftwatch: inconclusive: {}\n",
                 result.processes.empty()
                     ? "no census arrived (static binary, or the shim did not load?)"
                     : "too few censuses to judge (run longer or lower --interval)");
      break;
  }
  fmt::print(out, "  command ran {:.1f} s, census interval {} ms, {}{}\n", result.duration_s,
             result.interval_ms, DescribeExit(result.child_exit),
             result.ended_by_us ? " (stopped by driftwatch)" : "");
  if (result.child_failed) {
    fmt::print(out, "  the command failed before the run ended: {}\n",
               DescribeExit(result.child_exit));
  }

  for (const ProcessReport& process : result.processes) {
    fmt::print(out, "\nprocess {} {}{}: {} census{}, rss {}, fds {}, threads {}, heap live {}\n",
               process.identity.pid, process.identity.exe,
               process.exit.has_value() ? fmt::format(" ({})", DescribeExit(*process.exit)) : "",
               process.census_count, process.census_count == 1 ? "" : "es",
               FormatBytes(static_cast<double>(process.totals.rss_bytes)), process.totals.fd_count,
               process.totals.thread_count,
               FormatBytes(static_cast<double>(process.heap_live_bytes)));
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
    const std::vector<const SiteReport*> findings = Findings(process);
    if (findings.empty()) {
      if (!process.heap_total_finding.enough_samples) {
        fmt::print(out, "  too few censuses to judge\n");
      } else {
        fmt::print(out, "  no growing site\n");
      }
      continue;
    }
    fmt::print(out, "  {:<7} {:<9} {:>14} {:>10} {:>11}  {}\n", "KIND", "STATUS", "SLOPE", "LIVE",
               "LIVE BYTES", "WHERE");
    for (size_t i = 0; i < findings.size() && i < max_sites; ++i) {
      const SiteReport& site = *findings[i];
      const std::string where = site.frames.empty() ? std::string("(unattributed)")
                                                    : site.frames[site.headline].Describe();
      fmt::print(out, "  {:<7} {:<9} {:>14} {:>10} {:>11}  {}\n", KindName(site.kind),
                 DriftStatusName(site.finding.status),
                 FormatSlope(site.finding.slope_per_hour, site.unit), site.live,
                 FormatBytes(static_cast<double>(site.live_bytes)), where);
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
  }
}

}  // namespace dw::report
