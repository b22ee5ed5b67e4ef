#include "report/transport/process_tree.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace dw::report {
namespace {

// A ppid chain longer than this is a loop made by pid reuse while we walked.
constexpr int kMaxChainLength = 4096;
// environ and maps are read up to this size: enough for any real environment and maps file.
constexpr size_t kMaxProcFileBytes = 8 << 20;

std::string ProcPath(pid_t pid, const char* file) { return absl::StrCat("/proc/", pid, "/", file); }

std::optional<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text;
  char buffer[16384];
  while (text.size() < limit && in.read(buffer, sizeof(buffer)).gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return std::nullopt;
  return text;
}

// "pid (comm) S ppid ..." where comm may hold spaces and ')': the fields after it follow the
// last ')'.
std::optional<ProcStat> ParseStat(absl::string_view text) {
  const size_t close = text.rfind(')');
  if (close == absl::string_view::npos) return std::nullopt;
  ProcStat stat;
  if (!absl::SimpleAtoi(text.substr(0, text.find(' ')), &stat.pid)) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(text.substr(close + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  if (fields.size() < 20 || fields[0].empty()) return std::nullopt;
  stat.state = fields[0][0];
  if (!absl::SimpleAtoi(fields[1], &stat.ppid)) return std::nullopt;
  if (!absl::SimpleAtoi(fields[19], &stat.start_ticks)) return std::nullopt;
  return stat;
}

}  // namespace

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  std::optional<std::string> text = ReadSmallFile(ProcPath(pid, "stat"), 4096);
  if (!text.has_value()) return std::nullopt;
  return ParseStat(*text);
}

bool IsDescendantOf(pid_t pid, pid_t ancestor) {
  for (int step = 0; step < kMaxChainLength && pid > 1; ++step) {
    if (pid == ancestor) return true;
    std::optional<ProcStat> stat = ReadProcStat(pid);
    if (!stat.has_value()) return false;
    pid = stat->ppid;
  }
  return pid == ancestor;
}

namespace {

// Every live process whose ppid chain reaches `ancestor`, found by reading all of /proc: the
// fallback for kernels without /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN).
std::vector<ProcStat> ScanAllForDescendants(pid_t ancestor) {
  absl::flat_hash_map<pid_t, ProcStat> all;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    if (std::optional<ProcStat> stat = ReadProcStat(pid); stat.has_value()) all[pid] = *stat;
  }
  std::vector<ProcStat> descendants;
  for (const auto& [pid, stat] : all) {
    pid_t up = stat.ppid;
    for (int step = 0; step < kMaxChainLength && up > 1 && up != ancestor; ++step) {
      auto it = all.find(up);
      if (it == all.end()) break;
      up = it->second.ppid;
    }
    if (up == ancestor && pid != ancestor) descendants.push_back(stat);
  }
  return descendants;
}

// The children of every thread of `pid` (a child belongs to the thread that forked it), or
// nullopt when the kernel does not list children.
std::optional<std::vector<pid_t>> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  std::error_code error;
  bool listed = false;
  for (const auto& task : std::filesystem::directory_iterator(ProcPath(pid, "task"), error)) {
    std::optional<std::string> text = ReadSmallFile(task.path().string() + "/children", 1 << 20);
    if (!text.has_value()) continue;
    listed = true;
    for (absl::string_view word : absl::StrSplit(*text, ' ', absl::SkipEmpty())) {
      pid_t child = 0;
      if (absl::SimpleAtoi(word, &child)) children.push_back(child);
    }
  }
  if (!listed && !error) return std::nullopt;
  return children;
}

}  // namespace

std::vector<ProcStat> ListDescendants(pid_t ancestor) {
  // Walks down from `ancestor` (cost: the size of the run's tree, not of the machine's).
  if (!ChildrenOf(ancestor).has_value()) return ScanAllForDescendants(ancestor);
  std::vector<ProcStat> descendants;
  std::vector<pid_t> pending = {ancestor};
  while (!pending.empty() && descendants.size() < kMaxChainLength * 16) {
    const pid_t pid = pending.back();
    pending.pop_back();
    for (pid_t child : ChildrenOf(pid).value_or(std::vector<pid_t>())) {
      if (std::optional<ProcStat> stat = ReadProcStat(child); stat.has_value()) {
        descendants.push_back(*stat);
        pending.push_back(child);
      }
    }
  }
  return descendants;
}

std::optional<uid_t> ProcessEffectiveUid(pid_t pid) {
  std::optional<std::string> text = ReadSmallFile(ProcPath(pid, "status"), 64 << 10);
  if (!text.has_value()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::StartsWith(line, "Uid:")) continue;
    // "Uid:\treal\teffective\tsaved\tfs"
    std::vector<absl::string_view> ids = absl::StrSplit(line, '\t', absl::SkipEmpty());
    uid_t uid = 0;
    if (ids.size() >= 3 && absl::SimpleAtoi(ids[2], &uid)) return uid;
  }
  return std::nullopt;
}

std::string ProcessExe(pid_t pid) {
  std::error_code error;
  std::filesystem::path exe = std::filesystem::read_symlink(ProcPath(pid, "exe"), error);
  if (!error) return exe.string();
  std::optional<std::string> stat = ReadSmallFile(ProcPath(pid, "stat"), 4096);
  if (stat.has_value()) {
    const size_t open = stat->find('('), close = stat->rfind(')');
    if (open != std::string::npos && close != std::string::npos && close > open) {
      return absl::StrCat("[", stat->substr(open + 1, close - open - 1), "]");
    }
  }
  return "?";
}

ProcessNames ReadProcessNames(pid_t pid) {
  ProcessNames names;
  if (std::optional<std::string> comm = ReadSmallFile(ProcPath(pid, "comm"), 256);
      comm.has_value()) {
    names.comm = comm->substr(0, comm->find('\n'));
  }
  if (std::optional<std::string> cmdline = ReadSmallFile(ProcPath(pid, "cmdline"), 4096);
      cmdline.has_value()) {
    const std::string argv0 = cmdline->substr(0, cmdline->find('\0'));
    names.argv0 = argv0.substr(argv0.rfind('/') == std::string::npos ? 0 : argv0.rfind('/') + 1);
  }
  return names;
}

bool CarriesShim(pid_t pid, const std::string& socket_variable, const std::string& shim_path) {
  if (std::optional<std::string> environ =
          ReadSmallFile(ProcPath(pid, "environ"), kMaxProcFileBytes);
      environ.has_value()) {
    for (absl::string_view var : absl::StrSplit(*environ, '\0')) {
      if (var == socket_variable) return true;
    }
  }
  if (std::optional<std::string> maps = ReadSmallFile(ProcPath(pid, "maps"), kMaxProcFileBytes);
      maps.has_value()) {
    for (absl::string_view line : absl::StrSplit(*maps, '\n')) {
      if (absl::EndsWith(line, shim_path) && line.size() > shim_path.size() &&
          line[line.size() - shim_path.size() - 1] == ' ') {
        return true;
      }
    }
  }
  return false;
}

double UptimeSeconds() {
  std::optional<std::string> text = ReadSmallFile("/proc/uptime", 256);
  double seconds = 0;
  if (!text.has_value() || !absl::SimpleAtod(text->substr(0, text->find(' ')), &seconds)) return 0;
  return seconds;
}

double ProcessAgeSeconds(const ProcStat& stat) {
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (ticks_per_second <= 0) return 0;
  return UptimeSeconds() - static_cast<double>(stat.start_ticks) / ticks_per_second;
}

}  // namespace dw::report
