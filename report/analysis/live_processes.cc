#include "report/analysis/live_processes.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "report/transport/process_tree.h"

namespace dw::report {
namespace {

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The kernel keeps 15 bytes of a command name (TASK_COMM_LEN - 1).
constexpr size_t kCommBytes = 15;

double NowUnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string ProcessLabel::Describe() const { return absl::StrCat(name, "[", pid, "]"); }

ProcessLabel LabelProcess(const HelloInfo& hello, const std::optional<ProcessNames>& names) {
  ProcessLabel label;
  label.exe = hello.identity.exe;
  label.pid = hello.identity.pid;
  label.start_time_ticks = hello.identity.start_time_ticks;
  if (names.has_value()) {
    label.name = names->comm;
    // comm cut at 15 bytes: argv[0] says the whole name, when it starts the same.
    if (label.name.size() == kCommBytes && names->argv0.starts_with(label.name)) {
      label.name = names->argv0;
    }
    if (label.name.empty()) label.name = names->argv0;
  }
  if (label.name.empty()) label.name = Basename(label.exe);
  if (label.name.empty()) label.name = "?";
  // Start time in clock ticks after boot, turned into wall-clock time through the uptime.
  const double uptime = UptimeSeconds();
  if (uptime > 0 && hello.identity.clock_ticks_per_second > 0) {
    label.started_unix_s = NowUnixSeconds() - uptime +
                           static_cast<double>(label.start_time_ticks) /
                               static_cast<double>(hello.identity.clock_ticks_per_second);
  }
  return label;
}

std::vector<DriftingSite> DriftingSites(const ProcessReport& process) {
  std::vector<DriftingSite> drifting;
  for (const SiteReport& group : process.groups) {
    if (group.finding.status != DriftStatus::kDrifting) continue;
    DriftingSite site;
    site.kind = group.kind;
    site.where = group.frames.empty() ? std::string("(no call site: unattributed)")
                                      : group.frames[group.headline].Describe();
    site.slope_per_hour = group.finding.slope_per_hour;
    site.unit = group.unit;
    drifting.push_back(std::move(site));
  }
  std::stable_sort(drifting.begin(), drifting.end(),
                   [](const DriftingSite& a, const DriftingSite& b) {
                     if (a.kind != b.kind) return a.kind < b.kind;
                     return a.slope_per_hour > b.slope_per_hour;
                   });
  return drifting;
}

DriftChanges DriftTracker::Update(const std::vector<DriftingSite>& now) {
  for (const DriftingSite& site : now) {
    const bool known = std::any_of(tracked_.begin(), tracked_.end(),
                                   [&site](const Tracked& t) { return t.site.SameSite(site); });
    if (!known) tracked_.push_back({.site = site});
  }
  DriftChanges changes;
  for (Tracked& tracked : tracked_) {
    auto found = std::find_if(now.begin(), now.end(), [&tracked](const DriftingSite& site) {
      return site.SameSite(tracked.site);
    });
    if (found != now.end()) {
      tracked.site = *found;
      tracked.misses = 0;
      if (++tracked.hits >= kStartAfter && !tracked.started) {
        tracked.started = true;
        changes.started.push_back(tracked.site);
      }
      continue;
    }
    tracked.hits = 0;
    ++tracked.misses;
    if (tracked.started && tracked.misses == kStopAfter) changes.stopped.push_back(tracked.site);
  }
  // Forgotten: stopped ones, and candidates that missed before they started.
  std::erase_if(tracked_, [](const Tracked& tracked) {
    return tracked.misses >= (tracked.started ? kStopAfter : 1);
  });
  return changes;
}

std::vector<DriftingSite> DriftTracker::drifting() const {
  std::vector<DriftingSite> sites;
  for (const Tracked& tracked : tracked_) {
    if (tracked.started) sites.push_back(tracked.site);
  }
  return sites;
}

ProcessSummary SummarizeProcess(const ProcessLabel& label, const ProcessReport& process,
                                Verdict verdict, double ended_unix_s) {
  ProcessSummary summary;
  summary.label = label;
  summary.verdict = verdict;
  summary.census_count = process.census_count;
  summary.ended_unix_s = ended_unix_s;
  summary.drifting = DriftingSites(process);
  if (summary.drifting.size() > ProcessSummary::kSummarySites) {
    summary.drifting.resize(ProcessSummary::kSummarySites);
  }
  summary.stream_error = process.stream_error;
  return summary;
}

void EndedProcesses::Add(ProcessSummary summary) {
  if (capacity_ == 0) {
    ++dropped_;
    return;
  }
  while (entries_.size() >= capacity_) {
    entries_.pop_front();
    ++dropped_;
  }
  entries_.push_back(std::move(summary));
}

}  // namespace dw::report
