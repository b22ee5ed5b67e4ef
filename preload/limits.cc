#include "preload/limits.h"

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

#include "preload/os.h"
#include "preload/record_writer.h"

namespace dw {
namespace {

// "max" (no limit) and unreadable values are 0.
uint64_t ParseLimit(const char* text) {
  if (text[0] < '0' || text[0] > '9') return 0;
  return strtoull(text, nullptr, 10);
}

uint64_t ReadLimitFile(const char* path) {
  char text[64];
  if (os::ReadSmallFile(path, text, sizeof(text)) <= 0) return 0;
  return ParseLimit(text);
}

uint64_t RlimitValue(int resource, bool hard) {
  rlimit limit;
  if (getrlimit(resource, &limit) != 0) return 0;
  rlim_t value = hard ? limit.rlim_max : limit.rlim_cur;
  return value == RLIM_INFINITY ? 0 : static_cast<uint64_t>(value);
}

// The process's cgroup path: the v2 line "0::/path", or the v1 line of `controller`.
bool CgroupPath(const char* controller, char* path, size_t capacity) {
  char text[4096];
  if (os::ReadSmallFile("/proc/self/cgroup", text, sizeof(text)) <= 0) return false;
  for (char* line = text; line != nullptr && *line != '\0';) {
    char* next = strchr(line, '\n');
    if (next != nullptr) *next++ = '\0';
    char* controllers = strchr(line, ':');
    char* cgroup = controllers != nullptr ? strchr(controllers + 1, ':') : nullptr;
    if (cgroup != nullptr) {
      *cgroup++ = '\0';
      ++controllers;
      bool v2 = controller == nullptr && controllers[0] == '\0';
      bool v1 = controller != nullptr && strstr(controllers, controller) != nullptr;
      if ((v2 || v1) && strlen(cgroup) < capacity) {
        strcpy(path, cgroup);
        return true;
      }
    }
    line = next;
  }
  return false;
}

// A limit file of the process's cgroup, walking up the hierarchy: a limit set on any ancestor
// applies, and the tightest one wins.
uint64_t CgroupLimit(const char* root, const char* controller, const char* file) {
  char path[1024];
  if (!CgroupPath(controller, path, sizeof(path))) return 0;
  uint64_t tightest = 0;
  for (;;) {
    char full[1200];
    size_t root_length = strlen(root), path_length = strlen(path), file_length = strlen(file);
    if (root_length + path_length + file_length + 2 > sizeof(full)) return tightest;
    memcpy(full, root, root_length);
    memcpy(full + root_length, path, path_length);
    full[root_length + path_length] = '/';
    memcpy(full + root_length + path_length + 1, file, file_length + 1);
    uint64_t value = ReadLimitFile(full);
    // cgroup v1 reports "no limit" as a huge page-rounded number.
    if (value != 0 && value < (uint64_t{1} << 62) && (tightest == 0 || value < tightest)) {
      tightest = value;
    }
    char* slash = strrchr(path, '/');
    if (slash == nullptr || path[1] == '\0') return tightest;
    if (slash == path) {
      path[1] = '\0';  // up to the root
    } else {
      *slash = '\0';
    }
  }
}

uint64_t MemTotalBytes() {
  char text[4096];
  if (os::ReadSmallFile("/proc/meminfo", text, sizeof(text)) <= 0) return 0;
  const char* line = strstr(text, "MemTotal:");
  if (line == nullptr) return 0;
  line += strlen("MemTotal:");
  while (*line == ' ') ++line;
  return ParseLimit(line) * 1024;  // reported in kB
}

}  // namespace

wire::Limits ReadLimits() {
  wire::Limits limits{};
  limits.nofile_soft = RlimitValue(RLIMIT_NOFILE, false);
  limits.nofile_hard = RlimitValue(RLIMIT_NOFILE, true);
  limits.nproc_soft = RlimitValue(RLIMIT_NPROC, false);
  limits.address_space_bytes = RlimitValue(RLIMIT_AS, false);
  limits.threads_max = ReadLimitFile("/proc/sys/kernel/threads-max");
  limits.pids_max = CgroupLimit("/sys/fs/cgroup", nullptr, "pids.max");
  if (limits.pids_max == 0)
    limits.pids_max = CgroupLimit("/sys/fs/cgroup/pids", "pids", "pids.max");
  limits.memory_limit_bytes = CgroupLimit("/sys/fs/cgroup", nullptr, "memory.max");
  if (limits.memory_limit_bytes == 0) {
    limits.memory_limit_bytes =
        CgroupLimit("/sys/fs/cgroup/memory", "memory", "memory.limit_in_bytes");
  }
  limits.memory_total_bytes = MemTotalBytes();
  return limits;
}

bool WriteLimits(RecordWriter& writer) {
  wire::Limits limits = ReadLimits();
  return writer.Add(wire::RecordType::kLimits, &limits, sizeof(limits));
}

}  // namespace dw
