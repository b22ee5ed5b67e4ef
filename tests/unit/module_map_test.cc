// Tests of preload/module_map: /proc/self/maps parsing, build-ids read from the images mapped in
// this very process, and the record of the mappings a real dlclose() removed.
#include "preload/module_map.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dw {
namespace {

constexpr size_t kPage = 4096;

std::string ReadProcMaps() {
  std::ifstream in("/proc/self/maps");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A parsed maps line with its path copied out of the text it points into.
struct Mapping {
  wire::ModuleEntry entry;
  std::string path;
};

std::vector<Mapping> Mappings(const std::string& maps) {
  std::vector<Mapping> out;
  const char* cursor = maps.data();
  const char* const end = cursor + maps.size();
  MapsLine line;
  while (NextMapsLine(cursor, end, line)) {
    out.push_back(
        {line.entry, std::string(line.path == nullptr ? "" : line.path, line.entry.path_length)});
  }
  return out;
}

// The mapping of `path` that maps its file offset 0 (the ELF header), if any.
const Mapping* HeaderMapping(const std::vector<Mapping>& mappings, const std::string& path) {
  for (const Mapping& mapping : mappings) {
    if (mapping.path == path && mapping.entry.file_offset == 0) return &mapping;
  }
  return nullptr;
}

std::string RealPath(const char* path) {
  char resolved[PATH_MAX];
  return realpath(path, resolved) != nullptr ? std::string(resolved) : std::string();
}

std::string Hex(const uint8_t* bytes, size_t length) {
  std::string out;
  char digits[3];
  for (size_t i = 0; i < length; ++i) {
    snprintf(digits, sizeof(digits), "%02x", bytes[i]);
    out += digits;
  }
  return out;
}

std::string Hex(const BuildId& id) { return Hex(id.bytes, id.length); }

// What the dynamic loader knows of one loaded object: where its ELF header is mapped and the
// build-id found through its PT_NOTE program headers (notes aligned as the segment says).
struct LoadedObject {
  uint64_t header_address = 0;
  std::string build_id;  // hex; empty if none
};

struct FindObject {
  bool (*matches)(const char* name);
  LoadedObject found;
  bool seen = false;
};

int VisitObject(dl_phdr_info* info, size_t, void* data) {
  auto* find = static_cast<FindObject*>(data);
  if (find->seen || !find->matches(info->dlpi_name)) return 0;
  find->seen = true;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& program = info->dlpi_phdr[i];
    if (program.p_type == PT_LOAD && program.p_offset == 0) {
      find->found.header_address = info->dlpi_addr + program.p_vaddr;
    }
    if (program.p_type != PT_NOTE) continue;
    const size_t align = program.p_align > 4 ? program.p_align : 4;
    const auto* notes = reinterpret_cast<const uint8_t*>(info->dlpi_addr + program.p_vaddr);
    for (size_t pos = 0; pos + sizeof(ElfW(Nhdr)) <= program.p_memsz;) {
      ElfW(Nhdr) note;
      memcpy(&note, notes + pos, sizeof(note));
      const size_t name_at = pos + sizeof(note);
      const size_t descriptor_at = name_at + ((note.n_namesz + align - 1) & ~(align - 1));
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
          memcmp(notes + name_at, "GNU", 4) == 0) {
        find->found.build_id = Hex(notes + descriptor_at, note.n_descsz);
      }
      pos = descriptor_at + ((note.n_descsz + align - 1) & ~(align - 1));
    }
  }
  return 0;
}

LoadedObject FindLoadedObject(bool (*matches)(const char* name)) {
  FindObject find{matches, {}, false};
  dl_iterate_phdr(VisitObject, &find);
  EXPECT_TRUE(find.seen);
  return find.found;
}

bool IsMainProgram(const char* name) { return name[0] == '\0'; }
bool IsLibc(const char* name) { return strstr(name, "/libc.so.6") != nullptr; }

// The build-id `readelf -n` prints for `path`, hex; empty if readelf is not installed.
std::string ReadelfBuildId(const std::string& path) {
  if (access("/usr/bin/readelf", X_OK) != 0) return "";
  const std::string command = "/usr/bin/readelf -n '" + path + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  std::string output;
  char chunk[4096];
  for (size_t got; (got = fread(chunk, 1, sizeof(chunk), pipe)) > 0;) output.append(chunk, got);
  pclose(pipe);
  const size_t label = output.find("Build ID: ");
  if (label == std::string::npos) return "<readelf printed no Build ID>";
  const size_t begin = label + strlen("Build ID: ");
  return output.substr(begin, output.find_first_of(" \n", begin) - begin);
}

TEST(ModuleMapTest, ParsesMapsLines) {
  const std::string text =
      "7f1000000000-7f1000021000 r-xp 0001a000 fd:01 131090                     "
      "/usr/lib/x86_64-linux-gnu/libfoo.so.1\n"
      "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
      "55d000000000-55d000001000 r--p 00000000 fd:01 42   /tmp/old plugin.so (deleted)";
  const char* cursor = text.data();
  const char* const end = cursor + text.size();
  MapsLine line;

  ASSERT_TRUE(NextMapsLine(cursor, end, line));
  EXPECT_EQ(line.entry.start, 0x7f1000000000u);
  EXPECT_EQ(line.entry.end, 0x7f1000021000u);
  EXPECT_EQ(line.entry.file_offset, 0x1a000u);
  EXPECT_EQ(line.entry.flags, wire::kModuleRead | wire::kModuleExec);
  EXPECT_EQ(std::string_view(line.path, line.entry.path_length),
            "/usr/lib/x86_64-linux-gnu/libfoo.so.1");
  EXPECT_EQ(std::string_view(line.text, line.text_length), text.substr(0, text.find('\n')));

  ASSERT_TRUE(NextMapsLine(cursor, end, line));
  EXPECT_EQ(line.entry.flags, wire::kModuleRead | wire::kModuleWrite);
  EXPECT_EQ(line.entry.path_length, 0u) << "[stack] is not a file";
  EXPECT_EQ(line.path, nullptr);

  ASSERT_TRUE(NextMapsLine(cursor, end, line)) << "the last line needs no newline";
  EXPECT_EQ(line.entry.start, 0x55d000000000u);
  EXPECT_EQ(line.entry.flags, wire::kModuleRead);
  EXPECT_EQ(std::string_view(line.path, line.entry.path_length), "/tmp/old plugin.so (deleted)");
  EXPECT_FALSE(NextMapsLine(cursor, end, line));
}

TEST(ModuleMapTest, OnlyCodeImagesAreReadForBuildIds) {
  // Reading the first page of anything else would touch memory the target never touched.
  const std::string maps =
      "7f0000000000-7f0000001000 r--p 00000000 08:01 11 /usr/lib/libcode.so\n"
      "7f0000001000-7f0000002000 r-xp 00001000 08:01 11 /usr/lib/libcode.so\n"
      "7f0000003000-7f0000004000 r--p 00000000 08:01 12 /srv/data/table.bin\n"
      "7f0000004000-7f0000005000 rw-p 00001000 08:01 12 /srv/data/table.bin\n"
      "7f0000006000-7f0000007000 r-xp 00000000 00:01 13 /memfd:jit (deleted)\n"
      "7f0000008000-7f0000009000 r-xp 00000000 00:05 14 /dev/zero (deleted)\n"
      "7f000000a000-7f000000b000 r-xp 00000000 08:01 15 /usr/bin/tool\n"
      "7f000000b000-7f000000c000 r-xp 00001000 08:01 11 /usr/lib/libcode.so\n";
  const char* cursor = maps.data();
  const char* const end = cursor + maps.size();
  std::vector<std::string> code;
  MapsLine line;
  while (NextMapsLine(cursor, end, line)) {
    if (IsCodeImage(line, cursor, end)) code.emplace_back(line.path, line.entry.path_length);
  }
  EXPECT_EQ(code, (std::vector<std::string>{"/usr/lib/libcode.so", "/usr/bin/tool"}));

  // What a ModuleList lists: every line of the code images, none of the rest.
  std::vector<uint64_t> listed;
  for (CodeMappingWalker walker(maps.data(), end); walker.Next(line);) {
    listed.push_back(line.entry.start);
  }
  EXPECT_EQ(listed, (std::vector<uint64_t>{0x7f0000000000, 0x7f0000001000, 0x7f000000a000,
                                           0x7f000000b000}));
}

TEST(ModuleMapTest, ReadsTheBuildIdOfThisExecutable) {
  const std::string exe = RealPath("/proc/self/exe");
  ASSERT_FALSE(exe.empty());
  const std::vector<Mapping> mappings = Mappings(ReadProcMaps());
  const Mapping* header = HeaderMapping(mappings, exe);
  ASSERT_NE(header, nullptr) << exe << " has no mapping of file offset 0";

  const LoadedObject loaded = FindLoadedObject(IsMainProgram);
  ASSERT_FALSE(loaded.build_id.empty()) << "the test executable was linked without a build-id";
  EXPECT_EQ(header->entry.start, loaded.header_address);

  BuildId id;
  ASSERT_TRUE(ReadBuildId(header->entry.start, header->entry.end, id));
  EXPECT_EQ(Hex(id), loaded.build_id);
  EXPECT_EQ(id.length, 20u) << "ld's default build-id is a SHA-1";

  const std::string readelf = ReadelfBuildId(exe);
  if (!readelf.empty()) {
    EXPECT_EQ(Hex(id), readelf);
  }
}

TEST(ModuleMapTest, ReadsTheBuildIdOfLibc) {
  const LoadedObject loaded = FindLoadedObject(IsLibc);
  ASSERT_FALSE(loaded.build_id.empty());
  const std::vector<Mapping> mappings = Mappings(ReadProcMaps());
  const Mapping* header = nullptr;
  for (const Mapping& mapping : mappings) {
    if (mapping.entry.start == loaded.header_address) header = &mapping;
  }
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(header->entry.file_offset, 0u);
  EXPECT_NE(header->path.find("libc.so.6"), std::string::npos) << header->path;

  BuildId id;
  ASSERT_TRUE(ReadBuildId(header->entry.start, header->entry.end, id));
  EXPECT_EQ(Hex(id), loaded.build_id);

  const std::string readelf = ReadelfBuildId(header->path);
  if (!readelf.empty()) {
    EXPECT_EQ(Hex(id), readelf);
  }

  // The other mappings of libc are not ELF headers.
  for (const Mapping& mapping : mappings) {
    if (mapping.path != header->path || mapping.entry.file_offset == 0) continue;
    EXPECT_FALSE(ReadBuildId(mapping.entry.start, mapping.entry.end, id)) << mapping.path;
    EXPECT_EQ(id.length, 0u);
  }
}

// A hand-made ELF image in anonymous memory: a header, one PT_NOTE program header, and a note
// segment holding an ABI-tag note followed by a build-id note.
struct FakeImage {
  static constexpr size_t kNotesAt = 0x200;
  uint8_t* base = nullptr;
  size_t size = 0;

  explicit FakeImage(size_t pages, size_t notes_at = kNotesAt) : size(pages * kPage) {
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(memory, MAP_FAILED);
    base = static_cast<uint8_t*>(memory);
    Elf64_Ehdr header{};
    memcpy(header.e_ident, ELFMAG, SELFMAG);
    header.e_ident[EI_CLASS] = ELFCLASS64;
    header.e_ident[EI_DATA] = ELFDATA2LSB;
    header.e_ident[EI_VERSION] = EV_CURRENT;
    header.e_type = ET_DYN;
    header.e_machine = EM_X86_64;
    header.e_phoff = sizeof(Elf64_Ehdr);
    header.e_ehsize = sizeof(Elf64_Ehdr);
    header.e_phentsize = sizeof(Elf64_Phdr);
    header.e_phnum = 1;
    memcpy(base, &header, sizeof(header));

    std::string notes;
    AppendNote(notes, NT_GNU_ABI_TAG, std::string(16, '\0'));
    AppendNote(notes, NT_GNU_BUILD_ID, std::string("\xde\xad\xbe\xef\x00\x01\x02\xff\x10\x20", 10));
    Elf64_Phdr program{};
    program.p_type = PT_NOTE;
    program.p_offset = notes_at;
    program.p_vaddr = notes_at;
    program.p_filesz = notes.size();
    program.p_memsz = notes.size();
    program.p_align = 4;
    memcpy(base + sizeof(header), &program, sizeof(program));
    if (notes_at + notes.size() <= size) memcpy(base + notes_at, notes.data(), notes.size());
  }
  ~FakeImage() {
    if (base != nullptr) munmap(base, size);
  }

  static void AppendNote(std::string& notes, uint32_t type, const std::string& descriptor) {
    Elf64_Nhdr note{4, static_cast<Elf64_Word>(descriptor.size()), type};
    notes.append(reinterpret_cast<const char*>(&note), sizeof(note));
    notes.append("GNU\0", 4);
    notes += descriptor;
    notes.resize((notes.size() + 3) & ~size_t{3}, '\0');
  }

  uint64_t start() const { return reinterpret_cast<uint64_t>(base); }
  uint64_t end() const { return start() + size; }
};

TEST(ModuleMapTest, ReadsTheBuildIdNoteOfAHandMadeImage) {
  FakeImage image(1);
  BuildId id;
  ASSERT_TRUE(ReadBuildId(image.start(), image.end(), id)) << "the ABI-tag note is skipped";
  EXPECT_EQ(Hex(id), "deadbeef000102ff1020");

  // Without the build-id note: nothing found, and length reset.
  auto* program = reinterpret_cast<Elf64_Phdr*>(image.base + sizeof(Elf64_Ehdr));
  program->p_filesz = sizeof(Elf64_Nhdr) + 4 + 16;
  EXPECT_FALSE(ReadBuildId(image.start(), image.end(), id));
  EXPECT_EQ(id.length, 0u);

  program->p_filesz = program->p_memsz;
  ASSERT_TRUE(ReadBuildId(image.start(), image.end(), id));

  // Not ELF: the same bytes without the magic.
  image.base[EI_MAG0] = 0;
  EXPECT_FALSE(ReadBuildId(image.start(), image.end(), id));
  EXPECT_EQ(id.length, 0u);
  image.base[EI_MAG0] = ELFMAG0;

  // A 32-bit image is not looked into.
  image.base[EI_CLASS] = ELFCLASS32;
  EXPECT_FALSE(ReadBuildId(image.start(), image.end(), id));
}

TEST(ModuleMapTest, BuildIdOfUnmappedMemoryIsFalseNotAFault) {
  void* memory = mmap(nullptr, 2 * kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  ASSERT_EQ(munmap(memory, 2 * kPage), 0);
  const auto start = reinterpret_cast<uint64_t>(memory);
  BuildId id;
  id.length = 7;
  EXPECT_FALSE(ReadBuildId(start, start + 2 * kPage, id));
  EXPECT_EQ(id.length, 0u);

  // Inaccessible (PROT_NONE) pages are not read either.
  void* guard = mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(guard, MAP_FAILED);
  const auto guard_start = reinterpret_cast<uint64_t>(guard);
  EXPECT_FALSE(ReadBuildId(guard_start, guard_start + kPage, id));
  munmap(guard, kPage);

  // Empty and reversed ranges.
  EXPECT_FALSE(ReadBuildId(start, start, id));
  EXPECT_FALSE(ReadBuildId(start + kPage, start, id));
}

TEST(ModuleMapTest, BuildIdNoteInAPageUnmappedMeanwhileIsFalseNotAFault) {
  // The header is readable, but its notes lie in a second page that is gone (a concurrent
  // dlclose): the range still claims both pages.
  FakeImage image(2, kPage + 0x40);
  BuildId id;
  ASSERT_TRUE(ReadBuildId(image.start(), image.end(), id)) << "sanity: readable while mapped";
  ASSERT_EQ(munmap(image.base + kPage, kPage), 0);
  EXPECT_FALSE(ReadBuildId(image.start(), image.end(), id));
  EXPECT_EQ(id.length, 0u);
  munmap(image.base, kPage);
  image.base = nullptr;
}

TEST(ModuleMapTest, BuildIdOfANonElfMappingIsFalse) {
  void* anonymous =
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(anonymous, MAP_FAILED);
  const auto anonymous_start = reinterpret_cast<uint64_t>(anonymous);
  BuildId id;
  EXPECT_FALSE(ReadBuildId(anonymous_start, anonymous_start + kPage, id));
  // Nearly ELF: the magic without the rest.
  memcpy(anonymous, ELFMAG, SELFMAG);
  EXPECT_FALSE(ReadBuildId(anonymous_start, anonymous_start + kPage, id));
  munmap(anonymous, kPage);

  char path[] = "/tmp/shim_core_test_data_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text(kPage, 'x');
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  void* file = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  unlink(path);
  ASSERT_NE(file, MAP_FAILED);
  const auto file_start = reinterpret_cast<uint64_t>(file);
  EXPECT_FALSE(ReadBuildId(file_start, file_start + kPage, id));
  EXPECT_EQ(id.length, 0u);
  munmap(file, kPage);
}

struct Recorded {
  wire::ModuleEntry entry;
  std::string path;
  std::string build_id;  // hex
};

std::vector<Recorded> RecordedMappings(UnloadedModules& unloaded) {
  std::vector<Recorded> out;
  unloaded.ForEach([&](const MapsLine& line, const BuildId& id) {
    out.push_back({line.entry, std::string(line.path, line.entry.path_length), Hex(id)});
  });
  return out;
}

// Closes a dlopen handle still open when a test stops early, so that the next test finds the
// plugin unloaded.
struct Handle {
  void* handle = nullptr;
  ~Handle() {
    if (handle != nullptr) dlclose(handle);
  }
  // For the test's own dlclose.
  void* release() { return std::exchange(handle, nullptr); }
};

// The e2e test plugin: a small shared object no one else loads.
const std::string& PluginPath() {
  static const std::string path = RealPath(DW_TEST_PLUGIN_PATH);
  return path;
}

TEST(UnloadedModulesTest, RecordsTheMappingsOfADlclosedLibrary) {
  ASSERT_FALSE(PluginPath().empty()) << DW_TEST_PLUGIN_PATH << " does not exist";
  ASSERT_EQ(dlopen(PluginPath().c_str(), RTLD_NOW | RTLD_NOLOAD), nullptr)
      << "the plugin must not be loaded yet";
  Handle handle{dlopen(PluginPath().c_str(), RTLD_NOW | RTLD_LOCAL)};
  ASSERT_NE(handle.handle, nullptr) << dlerror();

  const std::vector<Mapping> loaded = Mappings(ReadProcMaps());
  const Mapping* header = HeaderMapping(loaded, PluginPath());
  ASSERT_NE(header, nullptr);
  BuildId id;
  ASSERT_TRUE(ReadBuildId(header->entry.start, header->entry.end, id));
  const std::string expected_build_id = Hex(id);
  size_t plugin_mappings = 0;
  for (const Mapping& mapping : loaded) plugin_mappings += mapping.path == PluginPath();

  UnloadedModules unloaded;
  const uint64_t generation = unloaded.generation();
  EXPECT_TRUE(RecordedMappings(unloaded).empty());
  UnloadedModules::Snapshot before;
  ASSERT_TRUE(unloaded.BeforeUnload(before));
  ASSERT_EQ(dlclose(handle.release()), 0);
  unloaded.AfterUnload(before);
  ASSERT_EQ(HeaderMapping(Mappings(ReadProcMaps()), PluginPath()), nullptr)
      << "dlclose did not unmap the plugin";

  // This dlclose was numbered when it began, and its mappings carry that number.
  EXPECT_EQ(unloaded.generation(), generation + 1);
  EXPECT_EQ(before.unload, generation + 1);
  const std::vector<Recorded> recorded = RecordedMappings(unloaded);
  for (const Recorded& mapping : recorded) {
    EXPECT_EQ(mapping.entry.flags >> wire::kModuleUnloadShift, generation + 1) << mapping.path;
  }
  ASSERT_FALSE(recorded.empty());
  EXPECT_EQ(recorded.size(), plugin_mappings) << "every mapping of the plugin, nothing else";
  bool saw_code = false;
  bool saw_header = false;
  uint64_t previous_start = 0;
  for (const Recorded& mapping : recorded) {
    SCOPED_TRACE(mapping.path);
    EXPECT_EQ(mapping.path, PluginPath());
    EXPECT_NE(mapping.entry.flags & wire::kModuleUnloaded, 0u);
    EXPECT_GT(mapping.entry.start, previous_start) << "in address order";
    previous_start = mapping.entry.start;
    if ((mapping.entry.flags & wire::kModuleExec) != 0) saw_code = true;
    if (mapping.entry.file_offset == 0) {
      saw_header = true;
      EXPECT_EQ(mapping.entry.start, header->entry.start);
      EXPECT_EQ(mapping.entry.end, header->entry.end);
      EXPECT_EQ(mapping.build_id, expected_build_id);
    } else {
      EXPECT_EQ(mapping.build_id, "") << "only the ELF header mapping has a build-id";
    }
  }
  EXPECT_TRUE(saw_code);
  EXPECT_TRUE(saw_header);
  EXPECT_EQ(unloaded.dropped(), 0u);
}

TEST(UnloadedModulesTest, DlcloseThatDoesNotUnloadRecordsNothing) {
  ASSERT_FALSE(PluginPath().empty());
  ASSERT_EQ(dlopen(PluginPath().c_str(), RTLD_NOW | RTLD_NOLOAD), nullptr);
  Handle first{dlopen(PluginPath().c_str(), RTLD_NOW | RTLD_LOCAL)};
  ASSERT_NE(first.handle, nullptr) << dlerror();
  Handle second{dlopen(PluginPath().c_str(), RTLD_NOW | RTLD_LOCAL)};
  ASSERT_EQ(second.handle, first.handle);

  UnloadedModules unloaded;
  const uint64_t version = unloaded.version();
  UnloadedModules::Snapshot before;
  ASSERT_TRUE(unloaded.BeforeUnload(before));
  ASSERT_EQ(dlclose(second.release()), 0);
  unloaded.AfterUnload(before);
  EXPECT_NE(HeaderMapping(Mappings(ReadProcMaps()), PluginPath()), nullptr) << "still loaded";
  EXPECT_EQ(unloaded.version(), version);
  EXPECT_TRUE(RecordedMappings(unloaded).empty());

  // The last reference does unload it, and only then is it recorded.
  ASSERT_TRUE(unloaded.BeforeUnload(before));
  ASSERT_EQ(dlclose(first.release()), 0);
  unloaded.AfterUnload(before);
  EXPECT_NE(unloaded.version(), version);
  EXPECT_FALSE(RecordedMappings(unloaded).empty());
}

TEST(UnloadedModulesTest, UnmappedDataFileIsNotAnUnloadedModule) {
  char path[] = "/tmp/shim_core_test_data_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text(kPage, 'x');
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  void* file = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  ASSERT_NE(file, MAP_FAILED);

  UnloadedModules unloaded;
  const uint64_t version = unloaded.version();
  UnloadedModules::Snapshot before;
  ASSERT_TRUE(unloaded.BeforeUnload(before));
  munmap(file, kPage);  // goes away between the two snapshots, but is no code module
  unloaded.AfterUnload(before);
  unlink(path);
  EXPECT_EQ(unloaded.version(), version);
  EXPECT_TRUE(RecordedMappings(unloaded).empty());
}

TEST(UnloadedModulesTest, LibraryReplacedOnDiskMeanwhileIsNotUnloaded) {
  // Two copies of the plugin (two inodes, so the loader maps both). While one is dlclosed, the
  // other's file is renamed over, as a deploy does: its maps lines gain " (deleted)", yet it is
  // still loaded and must not be recorded as unloaded.
  char dir_template[] = "/tmp/module_map_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string kept = dir + "/kept.so";
  const std::string closed = dir + "/closed.so";
  const std::string replacement = dir + "/replacement.so";
  for (const std::string& copy : {kept, closed, replacement}) {
    ASSERT_EQ(std::system(("cp '" + PluginPath() + "' '" + copy + "'").c_str()), 0);
  }
  Handle kept_handle{dlopen(kept.c_str(), RTLD_NOW | RTLD_LOCAL)};
  ASSERT_NE(kept_handle.handle, nullptr) << dlerror();
  Handle closed_handle{dlopen(closed.c_str(), RTLD_NOW | RTLD_LOCAL)};
  ASSERT_NE(closed_handle.handle, nullptr) << dlerror();
  ASSERT_NE(closed_handle.handle, kept_handle.handle);

  UnloadedModules unloaded;
  UnloadedModules::Snapshot before;
  ASSERT_TRUE(unloaded.BeforeUnload(before));
  ASSERT_EQ(rename(replacement.c_str(), kept.c_str()), 0);
  ASSERT_EQ(dlclose(closed_handle.release()), 0);
  unloaded.AfterUnload(before);

  bool closed_recorded = false;
  for (const Recorded& recorded : RecordedMappings(unloaded)) {
    EXPECT_EQ(recorded.path.find(kept), std::string::npos) << "still loaded: " << recorded.path;
    closed_recorded |= recorded.path == closed;
  }
  EXPECT_TRUE(closed_recorded);
  ASSERT_EQ(dlclose(kept_handle.release()), 0);
  unlink(kept.c_str());
  unlink(closed.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace dw
