#include "report/commands/launch_check.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace dw::report {
namespace {

// A script's interpreter may itself be a script (the kernel allows a few levels).
constexpr int kMaxInterpreterDepth = 4;

struct ElfFacts {
  bool is_elf = false;
  bool has_interp = false;
  bool is_go = false;
  std::vector<std::string> needed;
};

// Closes the fd and ends the Elf handle whatever path returns.
class ElfFile {
 public:
  explicit ElfFile(const std::string& path) : fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ >= 0 && elf_version(EV_CURRENT) != EV_NONE) elf_ = elf_begin(fd_, ELF_C_READ, nullptr);
  }
  ~ElfFile() {
    if (elf_ != nullptr) elf_end(elf_);
    if (fd_ >= 0) close(fd_);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  Elf* get() const { return elf_; }

 private:
  int fd_;
  Elf* elf_ = nullptr;
};

void ReadSections(Elf* elf, ElfFacts& facts) {
  size_t names = 0;
  if (elf_getshdrstrndx(elf, &names) != 0) return;
  for (Elf_Scn* section = elf_nextscn(elf, nullptr); section != nullptr;
       section = elf_nextscn(elf, section)) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) == nullptr) continue;
    const char* name = elf_strptr(elf, names, header.sh_name);
    if (name != nullptr &&
        (std::strcmp(name, ".go.buildinfo") == 0 || std::strcmp(name, ".note.go.buildid") == 0)) {
      facts.is_go = true;
    }
    if (header.sh_type != SHT_DYNAMIC) continue;
    Elf_Data* data = elf_getdata(section, nullptr);
    for (size_t i = 0;
         data != nullptr && header.sh_entsize > 0 && i < header.sh_size / header.sh_entsize; ++i) {
      GElf_Dyn entry;
      if (gelf_getdyn(data, static_cast<int>(i), &entry) == nullptr) break;
      if (entry.d_tag != DT_NEEDED) continue;
      if (const char* soname = elf_strptr(elf, header.sh_link, entry.d_un.d_val)) {
        facts.needed.emplace_back(soname);
      }
    }
  }
}

ElfFacts ReadElfFacts(const std::string& path) {
  ElfFacts facts;
  ElfFile file(path);
  if (file.get() == nullptr || elf_kind(file.get()) != ELF_K_ELF) return facts;
  facts.is_elf = true;
  size_t count = 0;
  if (elf_getphdrnum(file.get(), &count) == 0) {
    for (size_t i = 0; i < count; ++i) {
      GElf_Phdr header;
      if (gelf_getphdr(file.get(), static_cast<int>(i), &header) != nullptr &&
          header.p_type == PT_INTERP) {
        facts.has_interp = true;
      }
    }
  }
  ReadSections(file.get(), facts);
  return facts;
}

absl::Status CheckIds(const std::string& path, const struct stat& info) {
  if ((info.st_mode & S_ISUID) != 0 && info.st_uid != geteuid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is set-user-ID (owner uid ", info.st_uid,
        "): the kernel runs it in secure mode (AT_SECURE), where the loader ignores LD_PRELOAD, so "
        "the shim cannot load into it"));
  }
  // File capabilities raise a non-root user's privileges at exec, which sets AT_SECURE as the
  // set-ID bits do; root gains nothing from them, so its runs are not affected.
  if (getuid() != 0 && getxattr(path.c_str(), "security.capability", nullptr, 0) > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        " has file capabilities: the kernel runs it in secure mode (AT_SECURE), where the loader "
        "ignores LD_PRELOAD, so the shim cannot load into it"));
  }
  if ((info.st_mode & S_ISGID) != 0 && info.st_gid != getegid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is set-group-ID (group ", info.st_gid,
        "): the kernel runs it in secure mode (AT_SECURE), where the loader ignores LD_PRELOAD, so "
        "the shim cannot load into it"));
  }
  return absl::OkStatus();
}

// "#!/bin/sh -e" -> "/bin/sh"; "#!/usr/bin/env python3" -> python3 as found in $PATH.
std::optional<std::string> ScriptInterpreter(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char head[256] = {};
  const ssize_t got = read(fd, head, sizeof(head) - 1);
  close(fd);
  if (got < 2 || head[0] != '#' || head[1] != '!') return std::nullopt;
  absl::string_view line(head + 2, static_cast<size_t>(got - 2));
  line = line.substr(0, line.find('\n'));
  std::vector<absl::string_view> words =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (words.empty()) return std::nullopt;
  std::string interpreter(words[0]);
  if (!interpreter.ends_with("/env")) return interpreter;
  for (size_t i = 1; i < words.size(); ++i) {
    if (absl::StartsWith(words[i], "-")) continue;
    const char* env_path = std::getenv("PATH");
    for (absl::string_view dir :
         absl::StrSplit(env_path != nullptr ? env_path : "/usr/bin:/bin", ':')) {
      std::string candidate = absl::StrCat(dir, "/", words[i]);
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    break;
  }
  return interpreter;
}

absl::Status CheckElf(const std::string& path, const ElfFacts& facts, LaunchPlan& plan) {
  if (!facts.has_interp) {
    return absl::FailedPreconditionError(absl::StrCat(
        path,
        facts.is_go ? " is a Go program built without cgo, hence statically linked"
                    : " is statically linked",
        ": no dynamic loader runs in it to honour LD_PRELOAD, so the shim cannot load and "
        "nothing would be measured"));
  }
  if (facts.is_go) {
    plan.notes.push_back(absl::StrCat(
        path,
        " is a Go program: the Go heap does not use malloc, so only C allocations (cgo), "
        "fds, threads and timers made through libc are seen"));
  }
  for (const std::string& library : facts.needed) {
    if (IsSanitizerRuntime(library)) plan.sanitizer_runtimes.push_back(library);
  }
  if (!plan.sanitizer_runtimes.empty()) {
    plan.notes.push_back(absl::StrCat(
        path, " is built with a sanitizer (", plan.sanitizer_runtimes.front(),
        "): its runtime is preloaded before the shim and its allocator wins, so heap sites are "
        "not tracked; fds, threads and timers are"));
  }
  return absl::OkStatus();
}

absl::Status CheckFile(const std::string& path, int depth, LaunchPlan& plan) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot run ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot run ", path, ": not a regular file"));
  }
  if (std::optional<std::string> interpreter = ScriptInterpreter(path); interpreter.has_value()) {
    if (depth >= kMaxInterpreterDepth) {
      return absl::FailedPreconditionError(absl::StrCat(path, ": too many levels of interpreters"));
    }
    absl::Status status = CheckFile(*interpreter, depth + 1, plan);
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("script ", path, ": its interpreter: ", status.message()));
    }
    return absl::OkStatus();
  }
  // Checked after the script test: Linux ignores the set-ID bits of scripts.
  if (absl::Status ids = CheckIds(path, info); !ids.ok()) return ids;
  const ElfFacts facts = ReadElfFacts(path);
  if (!facts.is_elf) return absl::OkStatus();  // let execve judge other formats
  return CheckElf(path, facts, plan);
}

}  // namespace

bool IsSanitizerRuntime(std::string_view library) {
  const size_t slash = library.rfind('/');
  if (slash != std::string_view::npos) library.remove_prefix(slash + 1);
  for (std::string_view name :
       {"libasan.so", "libtsan.so", "libubsan.so", "liblsan.so", "libhwasan.so"}) {
    if (library.starts_with(name)) return true;
  }
  return false;
}

absl::StatusOr<LaunchPlan> CheckLaunch(const std::string& executable) {
  LaunchPlan plan;
  if (absl::Status status = CheckFile(executable, 0, plan); !status.ok()) return status;
  return plan;
}

}  // namespace dw::report
