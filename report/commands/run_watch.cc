#include "report/commands/run_watch.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "report/transport/process_tree.h"

namespace dw::report {

RunWatch::RunWatch(pid_t root, std::string socket_path, std::string shim_path, double min_age_s)
    : root_(root),
      socket_variable_(absl::StrCat("DRIFTWATCH_SOCKET=", socket_path)),
      shim_path_(std::move(shim_path)),
      min_age_s_(min_age_s) {}

void RunWatch::Scan() {
  for (const ProcStat& stat : ListDescendants(root_)) {
    Seen& seen = seen_[stat.pid];
    if (seen.start_ticks != stat.start_ticks) {  // a new process under a reused pid
      seen = Seen();
      seen.start_ticks = stat.start_ticks;
    }
    if (stat.state == 'Z') continue;  // nothing left to read but its stat
    seen.age_s = ProcessAgeSeconds(stat);
    if (std::optional<uid_t> uid = ProcessEffectiveUid(stat.pid); uid.has_value()) seen.uid = *uid;
    std::string exe = ProcessExe(stat.pid);  // again each time: an exec changes it
    // The environment and maps are read once per image, not at every scan.
    if (!seen.carries && exe != seen.exe) {
      seen.carries = CarriesShim(stat.pid, socket_variable_, shim_path_);
    }
    seen.exe = std::move(exe);
  }
}

bool RunWatch::Admits(const PeerInfo& peer) const {
  if (peer.pid <= 0) return false;
  return IsDescendantOf(peer.pid, root_) || seen_.contains(peer.pid) || reaped_.contains(peer.pid);
}

void RunWatch::NoteReaped(pid_t pid) { reaped_.insert(pid); }

std::vector<UnheardProcess> RunWatch::Unheard(const absl::flat_hash_set<pid_t>& heard,
                                              const Collector& collector) const {
  std::vector<UnheardProcess> unheard;
  absl::flat_hash_set<pid_t> listed;
  const auto add = [&](pid_t pid, uid_t uid, std::string exe, std::string reason) {
    if (heard.contains(pid) || !listed.insert(pid).second) return;
    unheard.push_back({.pid = pid, .uid = uid, .exe = std::move(exe), .reason = std::move(reason)});
  };
  for (const PeerInfo& peer : collector.turned_away()) {
    add(peer.pid, peer.uid, peer.exe, "turned away: the collector was out of file descriptors");
  }
  for (const PeerInfo& peer : collector.refused()) {
    // Refused, yet seen among the run's processes: the check lost a race with its exit.
    if (seen_.contains(peer.pid)) add(peer.pid, peer.uid, peer.exe, "refused");
  }
  for (const auto& [pid, seen] : seen_) {
    if (!seen.carries || seen.age_s < min_age_s_) continue;
    add(pid, seen.uid, seen.exe,
        fmt::format("never connected (carried the shim, lived {:.1f} s)", seen.age_s));
  }
  std::sort(unheard.begin(), unheard.end(),
            [](const UnheardProcess& a, const UnheardProcess& b) { return a.pid < b.pid; });
  return unheard;
}

}  // namespace dw::report
