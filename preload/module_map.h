// module_map.h: what a census says about the target's loaded modules.
//
// Three parts. NextMapsLine and CodeMappingWalker read /proc/self/maps, whose code images a
// ModuleList lists. ReadBuildId reads the GNU build-id of an ELF image as it sits in memory, so
// the collector can check that it symbolises the very file that was loaded, not whatever is at
// the path now. UnloadedModules numbers each dlclose() and keeps the mappings of the objects it
// removed, so that a site captured inside a plugin still resolves when the plugin is gone (or
// another took its addresses) by the census that defines the site.
//
// Thread-safety: NextMapsLine, CodeMappingWalker and ReadBuildId are thread-safe.
// UnloadedModules serialises on a mutex taken only by the dlclose hook (outside the real
// dlclose, so never inside the loader's lock) and by the census thread, which on the exit path
// only tries it; no allocation hook ever takes it. Allocation: none from the
// target's heap (mmap). Safe inside a hook: in the dlclose hook only (it makes system calls and
// takes a mutex); never on the allocation path.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>

#include "preload/os.h"
#include "preload/wire_format.h"

namespace dw {

// One line of /proc/self/maps.
struct MapsLine {
  wire::ModuleEntry entry;  // start, end, file_offset, flags; path_length 0 if anonymous
  const char* path = nullptr;
  const char* text = nullptr;  // the whole line, without its newline
  size_t text_length = 0;
};

// Parses the line at `cursor` and advances past it. False once `cursor` reaches `end`.
bool NextMapsLine(const char*& cursor, const char* end, MapsLine& line);

struct BuildId {
  uint32_t length = 0;  // 0: none found
  uint8_t bytes[wire::kMaxBuildIdLength];
};

// Reads the NT_GNU_BUILD_ID note of the ELF image whose file offset 0 is mapped at
// [start, end). Memory is read through os::OwnMemory, so a mapping removed meanwhile makes it
// return false rather than fault. The second form opens its own reader.
bool ReadBuildId(const os::OwnMemory& memory, uint64_t start, uint64_t end, BuildId& out);
bool ReadBuildId(uint64_t start, uint64_t end, BuildId& out);

// Whether the mapping at `line` (file offset 0) is worth reading a build-id from: a regular
// file that also has an executable mapping among the lines right after it in the maps text
// (`rest`, `end`). Reading other files' first page would fault in memory the target never
// touched: a shared memfd page charged to it, a huge page, a userfaultfd region, or a file on a
// network file system that might block.
bool IsCodeImage(const MapsLine& line, const char* rest, const char* end);

// Walks the lines of maps text that belong to ELF code images: each run of consecutive lines of
// one file that includes an executable mapping, all of its lines (the header and data too,
// which the load bias needs). Data files, devices, memfds and anonymous mappings are skipped:
// they resolve no stack, and a process that maps thousands of them (a JVM's jars, a database's
// segments) would otherwise fill every ModuleList.
class CodeMappingWalker {
 public:
  CodeMappingWalker(const char* begin, const char* end) : cursor_(begin), end_(end) {}
  // The next line of a code image; false at the end.
  bool Next(MapsLine& line);
  // Where the walk is: the text after the line Next() last returned.
  const char* rest() const { return cursor_; }

 private:
  const char* cursor_;
  const char* end_;
  const char* group_path_ = nullptr;  // the run of lines being walked
  uint32_t group_path_length_ = 0;
  bool group_is_code_ = false;
};

class UnloadedModules {
 public:
  // The modules as they were just before a dlclose(), with their build-ids (an unmapped image
  // can no longer be read). Owned by the dlclose call; its memory is released by AfterUnload.
  struct Snapshot {
    uint64_t unload = 0;    // this dlclose's number (generation() once it began)
    os::PageBuffer images;  // the loaded objects, with their build-ids
    os::PageBuffer maps;
  };

  // Call before the real dlclose(): numbers it and snapshots the loaded objects (with
  // dl_iterate_phdr, which takes the loader's lock: never call this with the loader lock held
  // elsewhere or from the census thread) and the maps. False if /proc/self/maps could not be
  // read.
  bool BeforeUnload(Snapshot& before);
  // Call after it, with whether it succeeded: records every mapping of each object that is no
  // longer loaded, and releases the snapshot.
  void AfterUnload(Snapshot& before, bool closed = true);

  // Census thread: calls `visit(const MapsLine&, const BuildId&)` for each recorded mapping,
  // oldest first, with the mutex held (so `visit` must not call into the loader). With
  // `try_only` (the exit path, which may run in a signal handler that interrupted a dlclose on
  // this very thread) it gives up instead of waiting for the mutex, and returns false.
  template <typename Visit>
  bool ForEach(Visit visit, bool try_only = false);

  // How many dlclose() calls have begun (each may unload code). Stacks are stamped with it
  // (SiteDef::module_generation); each recorded mapping carries the number of its own unload in
  // its flags (wire::kModuleUnloadShift).
  uint64_t generation() const { return __atomic_load_n(&generation_, __ATOMIC_ACQUIRE); }

  // Census thread, once a census is sent: forgets the mappings of unloads numbered up to
  // `generation`. Stacks captured since that generation was current cannot have been in them,
  // and older stacks were defined (with a ModuleList that had them) by the censuses before.
  void Prune(uint64_t generation);

  // The lowest unload number whose mappings are all still listed: every unload numbered from it
  // on is complete in ForEach (the collector can tell when a stack's history was pruned).
  uint64_t history_start() const { return __atomic_load_n(&history_start_, __ATOMIC_ACQUIRE); }

  // Changes whenever the recorded mappings change (an unload, or a prune).
  uint64_t version() const { return __atomic_load_n(&version_, __ATOMIC_ACQUIRE); }

  // Mappings unloaded within about two census intervals beyond this many push out the oldest
  // (the collector then says the modules of the time are unknown rather than guess).
  static constexpr uint32_t kCapacity = 4096;
  // Longer paths are not recorded (the mapping is counted in dropped()).
  static constexpr uint32_t kMaxPath = 512;

  // In a fork child: a dlclose that was under way in another thread left the mutex held.
  void AfterForkChild() { mutex_ = PTHREAD_MUTEX_INITIALIZER; }

  uint64_t dropped() const { return __atomic_load_n(&dropped_, __ATOMIC_RELAXED); }

 private:
  struct Record {
    uint64_t unload;  // the number of the unload that removed it
    wire::ModuleEntry entry;
    BuildId build_id;
    char path[kMaxPath];
  };
  // pre: mutex_ held. `unload` numbers the dlclose that removed the mapping.
  void Add(const MapsLine& line, const BuildId& build_id, uint64_t unload);

  pthread_mutex_t mutex_ = PTHREAD_MUTEX_INITIALIZER;
  Record* records_ = nullptr;  // kCapacity entries, mapped on first use
  uint32_t next_ = 0;          // ring position of the next record
  uint32_t count_ = 0;
  uint64_t generation_ = 0;
  uint64_t version_ = 0;
  uint64_t history_start_ = 1;
  uint64_t dropped_ = 0;
};

template <typename Visit>
bool UnloadedModules::ForEach(Visit visit, bool try_only) {
  if (try_only) {
    if (pthread_mutex_trylock(&mutex_) != 0) return false;
  } else {
    pthread_mutex_lock(&mutex_);
  }
  const uint32_t first = (next_ + kCapacity - count_) % kCapacity;
  for (uint32_t i = 0; i < count_; ++i) {
    const Record& record = records_[(first + i) % kCapacity];
    MapsLine line;
    line.entry = record.entry;
    line.path = record.path;
    visit(static_cast<const MapsLine&>(line), record.build_id);
  }
  pthread_mutex_unlock(&mutex_);
  return true;
}

}  // namespace dw
