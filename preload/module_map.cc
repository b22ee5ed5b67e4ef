#include "preload/module_map.h"

#include <elf.h>
#include <link.h>

#include <cstring>
#include <initializer_list>
#include <span>

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

bool SamePath(const MapsLine& a, const char* path, uint32_t length) {
  return a.entry.path_length == length && memcmp(a.path, path, length) == 0;
}

// A loaded ELF object as dl_iterate_phdr shows it: enough to tell, after a dlclose, which
// objects went away and which lines of the maps were theirs.
struct LoadedImage {
  uint64_t base;  // dlpi_addr
  uint64_t low;   // start of its lowest PT_LOAD segment
  uint64_t high;  // end of its highest
  BuildId build_id;
};

// Whether [vaddr, vaddr + size) lies inside one of the object's loaded segments, and so is
// mapped: a note outside every PT_LOAD is in the file only.
bool IsLoaded(const dl_phdr_info& info, uint64_t vaddr, uint64_t size) {
  for (ElfW(Half) i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info.dlpi_phdr[i];
    if (segment.p_type == PT_LOAD && vaddr >= segment.p_vaddr && size <= segment.p_filesz &&
        vaddr - segment.p_vaddr <= segment.p_filesz - size) {
      return true;
    }
  }
  return false;
}

// Reads an object's build-id note straight from memory: only called inside dl_iterate_phdr,
// while the loader cannot unmap the object.
void BuildIdInMemory(const dl_phdr_info& info, BuildId& out) {
  out.length = 0;
  for (ElfW(Half) i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& program = info.dlpi_phdr[i];
    if (program.p_type != PT_NOTE || !IsLoaded(info, program.p_vaddr, program.p_filesz)) continue;
    const uint64_t pad = program.p_align == 8 ? 7 : 3;
    const auto* notes = reinterpret_cast<const unsigned char*>(info.dlpi_addr + program.p_vaddr);
    uint64_t pos = 0;
    while (pos + sizeof(Elf64_Nhdr) <= program.p_filesz) {
      Elf64_Nhdr note;
      memcpy(&note, notes + pos, sizeof(note));
      const uint64_t name_at = pos + sizeof(note);
      const uint64_t descriptor_at = name_at + ((uint64_t{note.n_namesz} + pad) & ~pad);
      if (descriptor_at > program.p_filesz || note.n_descsz > program.p_filesz - descriptor_at) {
        break;
      }
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && note.n_descsz > 0 &&
          note.n_descsz <= wire::kMaxBuildIdLength && memcmp(notes + name_at, "GNU", 4) == 0) {
        out.length = note.n_descsz;
        memcpy(out.bytes, notes + descriptor_at, note.n_descsz);
        return;
      }
      pos = descriptor_at + ((uint64_t{note.n_descsz} + pad) & ~pad);
    }
  }
}

int ListImage(dl_phdr_info* info, size_t, void* data) {
  LoadedImage image{info->dlpi_addr, UINT64_MAX, 0, {}};
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& program = info->dlpi_phdr[i];
    if (program.p_type != PT_LOAD) continue;
    const uint64_t start = info->dlpi_addr + program.p_vaddr;
    if (start < image.low) image.low = start;
    if (start + program.p_memsz > image.high) image.high = start + program.p_memsz;
  }
  if (image.high == 0) return 0;
  BuildIdInMemory(*info, image.build_id);
  static_cast<os::PageBuffer*>(data)->Append(&image, sizeof(image));  // no room: not listed
  return 0;
}

// The loaded objects, listed without system calls (beyond growing `out`).
void ListLoadedImages(os::PageBuffer& out) {
  out.Clear();
  dl_iterate_phdr(ListImage, &out);
}

bool SameImage(const LoadedImage& a, const LoadedImage& b) {
  return a.base == b.base && a.low == b.low && a.high == b.high &&
         a.build_id.length == b.build_id.length &&
         memcmp(a.build_id.bytes, b.build_id.bytes, a.build_id.length) == 0;
}

std::span<const LoadedImage> Images(const os::PageBuffer& buffer) {
  return {reinterpret_cast<const LoadedImage*>(buffer.data()), buffer.size() / sizeof(LoadedImage)};
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

bool CodeMappingWalker::Next(MapsLine& line) {
  while (NextMapsLine(cursor_, end_, line)) {
    if (line.entry.path_length == 0) {
      group_path_ = nullptr;
      continue;
    }
    if (group_path_ == nullptr || !SamePath(line, group_path_, group_path_length_)) {
      group_path_ = line.path;
      group_path_length_ = line.entry.path_length;
      // The first line of an image is its header, at offset 0; IsCodeImage looks for the
      // executable mapping among the lines that follow.
      MapsLine first = line;
      first.entry.file_offset = 0;
      first.entry.flags |= wire::kModuleRead;
      group_is_code_ = IsCodeImage(first, cursor_, end_);
    }
    if (group_is_code_) return true;
  }
  return false;
}

bool UnloadedModules::BeforeUnload(Snapshot& before) {
  // Numbered before the real dlclose unmaps anything: a stack captured once the number is taken
  // cannot be in this unload's modules (code that runs while its own module is unloaded is
  // already broken), while a module loaded into their addresses right after the unmap is told
  // apart from them by the collector.
  before.unload = __atomic_add_fetch(&generation_, 1, __ATOMIC_ACQ_REL);
  // The objects (and their build-ids, which cannot be read once unmapped) from the loader, and
  // their mappings, with the paths the kernel resolved, from the maps.
  ListLoadedImages(before.images);
  if (!os::ReadFile("/proc/self/maps", before.maps)) {
    before.maps.Release();
    before.images.Release();
    return false;
  }
  return true;
}

void UnloadedModules::AfterUnload(Snapshot& before, bool closed) {
  if (closed) {
    os::PageBuffer after;
    ListLoadedImages(after);
    bool locked = false;
    for (const LoadedImage& image : Images(before.images)) {
      bool still_loaded = false;
      for (const LoadedImage& now : Images(after)) still_loaded |= SameImage(image, now);
      if (still_loaded) continue;
      if (!locked) {
        pthread_mutex_lock(&mutex_);
        locked = true;
      }
      // Every file mapping of the object: its code, data and the ELF header (which gives the
      // load bias). Not mappings of other files that other threads unmapped meanwhile.
      constexpr uint64_t kPage = 4096;
      const uint64_t low = image.low & ~(kPage - 1);
      const uint64_t high = (image.high + kPage - 1) & ~(kPage - 1);
      const char* cursor = before.maps.data();
      const char* const end = cursor + before.maps.size();
      MapsLine line;
      while (NextMapsLine(cursor, end, line)) {
        if (line.entry.path_length == 0 || line.entry.start < low || line.entry.end > high)
          continue;
        Add(line, line.entry.file_offset == 0 ? image.build_id : BuildId{}, before.unload);
      }
    }
    if (locked) {
      __atomic_fetch_add(&version_, 1, __ATOMIC_RELEASE);
      pthread_mutex_unlock(&mutex_);
    }
    after.Release();
  }
  before.maps.Release();
  before.images.Release();
}

void UnloadedModules::Add(const MapsLine& line, const BuildId& build_id, uint64_t unload) {
  if (line.entry.path_length >= kMaxPath) {
    __atomic_fetch_add(&dropped_, 1, __ATOMIC_RELAXED);
    return;
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
