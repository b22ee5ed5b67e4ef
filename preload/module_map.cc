#include "preload/module_map.h"

#include <elf.h>

#include <cstring>
#include <initializer_list>

namespace dw {
namespace {

uint64_t ParseHex(const char*& cursor, const char* end) {
  uint64_t value = 0;
  for (; cursor < end; ++cursor) {
    char c = *cursor;
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else {
      break;
    }
    value = value * 16 + digit;
  }
  return value;
}

void SkipField(const char*& cursor, const char* end) {
  while (cursor < end && *cursor != ' ') ++cursor;
  while (cursor < end && *cursor == ' ') ++cursor;
}

// The path's length without the " (deleted)" the kernel appends once the file is unlinked or
// renamed over: a still-mapped library replaced on disk during a dlclose is not unloaded.
uint32_t PathLengthWithoutDeleted(const MapsLine& line) {
  constexpr char kDeleted[] = " (deleted)";
  constexpr uint32_t kDeletedLength = sizeof(kDeleted) - 1;
  const uint32_t length = line.entry.path_length;
  if (length > kDeletedLength &&
      memcmp(line.path + length - kDeletedLength, kDeleted, kDeletedLength) == 0) {
    return length - kDeletedLength;
  }
  return length;
}

bool SameMapping(const MapsLine& a, const MapsLine& b) {
  const uint32_t length = PathLengthWithoutDeleted(a);
  return a.entry.start == b.entry.start && a.entry.end == b.entry.end &&
         a.entry.file_offset == b.entry.file_offset && length == PathLengthWithoutDeleted(b) &&
         memcmp(a.path, b.path, length) == 0;
}

bool SamePath(const MapsLine& a, const char* path, uint32_t length) {
  return a.entry.path_length == length && memcmp(a.path, path, length) == 0;
}

// Walks two address-ordered maps texts side by side and calls `gone(line)` for each mapping of
// `before` that `after` no longer has.
template <typename Gone>
void ForEachRemoved(const os::PageBuffer& before, const os::PageBuffer& after, Gone gone) {
  const char* b = before.data();
  const char* const b_end = b + before.size();
  const char* a = after.data();
  const char* const a_end = a + after.size();
  MapsLine later;
  bool have_later = NextMapsLine(a, a_end, later);
  MapsLine earlier;
  while (NextMapsLine(b, b_end, earlier)) {
    if (earlier.entry.path_length == 0) continue;
    while (have_later && later.entry.start < earlier.entry.start) {
      have_later = NextMapsLine(a, a_end, later);
    }
    if (!have_later || !SameMapping(earlier, later)) gone(earlier);
  }
}

}  // namespace

bool NextMapsLine(const char*& cursor, const char* end, MapsLine& line) {
  if (cursor >= end) return false;
  const char* line_end = static_cast<const char*>(memchr(cursor, '\n', end - cursor));
  if (line_end == nullptr) line_end = end;
  line = MapsLine{};
  line.text = cursor;
  line.text_length = static_cast<size_t>(line_end - cursor);
  const char* field = cursor;
  line.entry.start = ParseHex(field, line_end);
  ++field;  // '-'
  line.entry.end = ParseHex(field, line_end);
  ++field;  // ' '
  if (field + 4 <= line_end) {
    line.entry.flags = (field[0] == 'r' ? wire::kModuleRead : 0) |
                       (field[1] == 'w' ? wire::kModuleWrite : 0) |
                       (field[2] == 'x' ? wire::kModuleExec : 0);
  }
  SkipField(field, line_end);  // perms
  line.entry.file_offset = ParseHex(field, line_end);
  SkipField(field, line_end);  // offset
  SkipField(field, line_end);  // device
  SkipField(field, line_end);  // inode
  if (field < line_end && *field == '/') {
    line.path = field;
    line.entry.path_length = static_cast<uint32_t>(line_end - field);
  }
  cursor = line_end < end ? line_end + 1 : end;
  return true;
}

bool ReadBuildId(const os::OwnMemory& memory, uint64_t start, uint64_t end, BuildId& out) {
  out.length = 0;
  const uint64_t size = end - start;
  Elf64_Ehdr header;
  if (end <= start || size < sizeof(header) || !memory.Read(start, &header, sizeof(header))) {
    return false;
  }
  if (memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_phentsize != sizeof(Elf64_Phdr)) {
    return false;
  }
  // Program headers and notes sit in the first pages of the file, which this mapping covers:
  // anything outside it is not looked at.
  constexpr uint16_t kMaxProgramHeaders = 64;
  const uint16_t count = header.e_phnum < kMaxProgramHeaders ? header.e_phnum : kMaxProgramHeaders;
  for (uint16_t i = 0; i < count; ++i) {
    const uint64_t at = header.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr);
    Elf64_Phdr program;
    if (at > size - sizeof(program) || !memory.Read(start + at, &program, sizeof(program))) {
      return false;
    }
    if (program.p_type != PT_NOTE || program.p_offset >= size ||
        program.p_filesz > size - program.p_offset) {
      continue;
    }
    // Each note: a header, the name padded, the descriptor padded: to 4 bytes, or to 8 in a
    // segment aligned to 8 (such as .note.gnu.property's). Read piece by piece, straight into
    // small variables: this runs in the dlclose hook, on whatever stack the target's thread has.
    const uint64_t pad = program.p_align == 8 ? 7 : 3;
    const uint64_t notes = start + program.p_offset;
    constexpr int kMaxNotes = 64;
    uint64_t pos = 0;
    for (int n = 0; n < kMaxNotes && pos + sizeof(Elf64_Nhdr) <= program.p_filesz; ++n) {
      Elf64_Nhdr note;
      if (!memory.Read(notes + pos, &note, sizeof(note))) return false;
      const uint64_t name_at = pos + sizeof(note);
      const uint64_t descriptor_at = name_at + ((uint64_t{note.n_namesz} + pad) & ~pad);
      if (descriptor_at > program.p_filesz || note.n_descsz > program.p_filesz - descriptor_at) {
        break;
      }
      char name[4];
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && note.n_descsz > 0 &&
          note.n_descsz <= wire::kMaxBuildIdLength &&
          memory.Read(notes + name_at, name, sizeof(name)) && memcmp(name, "GNU", 4) == 0) {
        if (!memory.Read(notes + descriptor_at, out.bytes, note.n_descsz)) return false;
        out.length = note.n_descsz;
        return true;
      }
      pos = descriptor_at + ((uint64_t{note.n_descsz} + pad) & ~pad);
    }
  }
  return false;
}

bool ReadBuildId(uint64_t start, uint64_t end, BuildId& out) {
  const os::OwnMemory memory;
  return ReadBuildId(memory, start, end, out);
}

bool IsCodeImage(const MapsLine& line, const char* rest, const char* end) {
  if (line.entry.path_length == 0 || line.entry.file_offset != 0 ||
      (line.entry.flags & wire::kModuleRead) == 0) {
    return false;
  }
  for (const char* prefix : {"/dev/", "/memfd:", "/SYSV", "/proc/"}) {
    const size_t length = strlen(prefix);
    if (line.entry.path_length >= length && memcmp(line.path, prefix, length) == 0) return false;
  }
  if ((line.entry.flags & wire::kModuleExec) != 0) return true;
  MapsLine next;
  while (NextMapsLine(rest, end, next) && SamePath(next, line.path, line.entry.path_length)) {
    if ((next.entry.flags & wire::kModuleExec) != 0) return true;
  }
  return false;
}

bool UnloadedModules::BeforeUnload(Snapshot& before) {
  // Numbered before the real dlclose unmaps anything: a stack captured once the number is taken
  // cannot be in this unload's modules (code that runs while its own module is unloaded is
  // already broken), while a module loaded into their addresses right after the unmap is told
  // apart from them by the collector.
  before.unload = __atomic_add_fetch(&generation_, 1, __ATOMIC_ACQ_REL);
  if (!os::ReadFile("/proc/self/maps", before.maps)) {
    before.maps.Release();
    return false;
  }
  const os::OwnMemory memory;
  const char* cursor = before.maps.data();
  const char* const end = cursor + before.maps.size();
  MapsLine line;
  while (NextMapsLine(cursor, end, line)) {
    if (!IsCodeImage(line, cursor, end)) continue;
    SnapshotBuildId image{line.entry.start, {}};
    if (ReadBuildId(memory, line.entry.start, line.entry.end, image.build_id)) {
      before.build_ids.Append(&image, sizeof(image));
    }
  }
  return true;
}

void UnloadedModules::AfterUnload(Snapshot& before, bool closed) {
  os::PageBuffer after;
  if (closed && os::ReadFile("/proc/self/maps", after)) {
    // The code modules that went away: at most a few per dlclose (the plugin and the
    // dependencies only it used). Their other mappings (read-only data, the ELF header, which
    // gives the load bias) are recorded with them; unrelated unmaps made meanwhile by other
    // threads are left out unless they are code.
    constexpr int kMaxModulesPerUnload = 16;
    MapsLine code[kMaxModulesPerUnload];
    int code_count = 0;
    ForEachRemoved(before.maps, after, [&](const MapsLine& line) {
      if ((line.entry.flags & wire::kModuleExec) == 0) return;
      for (int i = 0; i < code_count; ++i) {
        if (SamePath(code[i], line.path, line.entry.path_length)) return;
      }
      if (code_count == kMaxModulesPerUnload) {
        __atomic_fetch_add(&dropped_, 1, __ATOMIC_RELAXED);
        return;
      }
      code[code_count++] = line;
    });
    if (code_count > 0) {
      pthread_mutex_lock(&mutex_);
      ForEachRemoved(before.maps, after, [&](const MapsLine& line) {
        for (int i = 0; i < code_count; ++i) {
          if (SamePath(code[i], line.path, line.entry.path_length)) {
            Add(line, before, before.unload);
            return;
          }
        }
      });
      __atomic_fetch_add(&version_, 1, __ATOMIC_RELEASE);
      pthread_mutex_unlock(&mutex_);
    }
  }
  after.Release();
  before.maps.Release();
  before.build_ids.Release();
}

void UnloadedModules::Add(const MapsLine& line, const Snapshot& before, uint64_t unload) {
  if (line.entry.path_length >= kMaxPath) {
    __atomic_fetch_add(&dropped_, 1, __ATOMIC_RELAXED);
    return;
  }
  BuildId build_id;
  if (line.entry.file_offset == 0) {
    const auto* images = reinterpret_cast<const SnapshotBuildId*>(before.build_ids.data());
    const size_t image_count = before.build_ids.size() / sizeof(SnapshotBuildId);
    for (size_t i = 0; i < image_count; ++i) {
      if (images[i].start == line.entry.start) build_id = images[i].build_id;
    }
  }
  if (records_ == nullptr)
    records_ = static_cast<Record*>(os::MapPages(sizeof(Record) * kCapacity));
  if (records_ == nullptr) {
    __atomic_fetch_add(&dropped_, 1, __ATOMIC_RELAXED);
    return;
  }
  if (count_ == kCapacity) {
    // Full: the oldest record goes, and with it the completeness of its unload's history.
    const uint64_t lost = records_[next_].unload;
    if (lost + 1 > history_start_) __atomic_store_n(&history_start_, lost + 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&dropped_, 1, __ATOMIC_RELAXED);
  } else {
    ++count_;
  }
  Record& record = records_[next_];
  record.unload = unload;
  record.entry = line.entry;
  record.entry.flags = (line.entry.flags & 0xffffu) | wire::kModuleUnloaded |
                       static_cast<uint32_t>((unload & 0xffffu) << wire::kModuleUnloadShift);
  record.build_id = build_id;
  memcpy(record.path, line.path, line.entry.path_length);
  next_ = (next_ + 1) % kCapacity;
}

void UnloadedModules::Prune(uint64_t generation) {
  if (pthread_mutex_trylock(&mutex_) != 0) return;  // a dlclose is recording: next census
  bool pruned = false;
  while (count_ > 0) {
    const uint32_t oldest = (next_ + kCapacity - count_) % kCapacity;
    if (records_[oldest].unload > generation) break;
    --count_;
    pruned = true;
  }
  if (pruned) {
    if (generation + 1 > history_start_)
      __atomic_store_n(&history_start_, generation + 1, __ATOMIC_RELEASE);
    __atomic_fetch_add(&version_, 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&mutex_);
}

}  // namespace dw
