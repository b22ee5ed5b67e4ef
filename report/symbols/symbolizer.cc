#include "report/symbols/symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "report/symbols/symbol_table.h"

namespace dw::report {
namespace {

// Symbol files are opened by the names a census stream gives: anything but a regular file (a
// FIFO would block the collector forever, a device could have side effects) is refused.
absl::Status CheckRegularFile(const std::string& path) {
  struct stat status;
  if (stat(path.c_str(), &status) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(status.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  return absl::OkStatus();
}

// Reads the program headers of the ELF at `path` and returns the virtual address that file offset
// `file_offset` is loaded at (PT_LOAD maps p_offset to p_vaddr).
absl::StatusOr<uint64_t> VaddrOfFileOffset(const std::string& path, uint64_t file_offset) {
  if (absl::Status regular = CheckRegularFile(path); !regular.ok()) return regular;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open: ", std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  Elf64_Ehdr ehdr;
  if (pread(fd, &ehdr, sizeof(ehdr), 0) != static_cast<ssize_t>(sizeof(ehdr)) ||
      std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0) {
    return absl::InvalidArgumentError("not an ELF file");
  }
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_phentsize != sizeof(Elf64_Phdr)) {
    return absl::InvalidArgumentError("not a 64-bit ELF file");
  }
  for (uint16_t i = 0; i < ehdr.e_phnum; ++i) {
    Elf64_Phdr phdr;
    if (pread(fd, &phdr, sizeof(phdr), ehdr.e_phoff + uint64_t{i} * sizeof(phdr)) !=
        static_cast<ssize_t>(sizeof(phdr))) {
      return absl::InvalidArgumentError("truncated program headers");
    }
    if (phdr.p_type != PT_LOAD) continue;
    // Mappings start on page boundaries, so the mapping's offset may lie up to a page below the
    // segment's p_offset; p_vaddr and p_offset are congruent modulo the page size.
    const uint64_t page = 4096;
    const uint64_t segment_start = phdr.p_offset & ~(page - 1);
    if (file_offset >= segment_start && file_offset < phdr.p_offset + phdr.p_filesz) {
      return phdr.p_vaddr - (phdr.p_offset - file_offset);
    }
  }
  return absl::NotFoundError(
      absl::StrFormat("no PT_LOAD segment covers file offset 0x%x", file_offset));
}

}  // namespace

namespace {

// GCC names the copies it makes of a function by appending a suffix: "probe.isra.0",
// "parse.constprop.0", "run.part.0", "handle.cold". Users wrote "probe", so that is what a
// frame says (the address still identifies the exact copy). In demangled C++ names the suffix
// reads " [clone .isra.0]".
std::string StripCloneSuffixes(std::string name) {
  for (size_t clone; (clone = name.find(" [clone .")) != std::string::npos;) {
    size_t end = name.find(']', clone);
    name.erase(clone, end == std::string::npos ? std::string::npos : end - clone + 1);
  }
  static constexpr const char* kSuffixes[] = {".isra.",     ".constprop.", ".part.",       ".cold",
                                              ".lto_priv.", ".localalias", ".specialized."};
  size_t cut = std::string::npos;
  for (const char* suffix : kSuffixes) cut = std::min(cut, name.find(suffix));
  if (cut != std::string::npos && cut > 0) name.erase(cut);
  return name;
}

}  // namespace

std::string Demangle(const char* symbol) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(symbol, nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) return StripCloneSuffixes(symbol);
  std::string result(demangled);
  std::free(demangled);
  return StripCloneSuffixes(std::move(result));
}

absl::StatusOr<uint64_t> ImageLoadBias(const ModuleMapping& first, const std::string& elf_file) {
  absl::StatusOr<uint64_t> vaddr = VaddrOfFileOffset(elf_file, first.file_offset);
  if (!vaddr.ok()) return vaddr.status();
  return first.start - *vaddr;
}

absl::StatusOr<uint64_t> ComputeLoadBias(const ModuleList& modules, const std::string& path) {
  const ModuleMapping* lowest = nullptr;
  for (const ModuleMapping& mapping : modules) {
    if (mapping.path == path && !mapping.unloaded() &&
        (lowest == nullptr || mapping.file_offset < lowest->file_offset)) {
      lowest = &mapping;
    }
  }
  if (lowest == nullptr) return absl::NotFoundError("module not in the module list");
  return ImageLoadBias(*lowest, path);
}

namespace {

// The mapping that starts the image `mapping` belongs to: the one with the lowest file offset in
// the run of neighbouring entries from the same file and unload. A ModuleList lists each image's
// mappings next to each other (address order for live ones, unload order for unloaded ones), so
// two images of one file, such as a plugin loaded again after a dlclose, stay apart.
size_t ImageStart(const ModuleList& modules, size_t index) {
  const ModuleMapping& mapping = modules[index];
  auto same_image = [&](size_t i) {
    return modules[i].path == mapping.path && modules[i].unloaded() == mapping.unloaded() &&
           modules[i].unload_number() == mapping.unload_number();
  };
  // An image's mappings go up in file offset; one that starts again lower is another image of
  // the same file (dlmopen, or the file also mapped as data).
  size_t first = index;
  while (first > 0 && same_image(first - 1) &&
         modules[first - 1].file_offset < modules[first].file_offset) {
    --first;
  }
  return first;
}

// What identifies an image across processes: its path and build-id. Without a build-id, a file
// deleted or replaced since it was mapped is another image than the one at the path now.
std::string ImageKey(const std::string& path, const std::string& build_id, bool deleted) {
  return absl::StrCat(path, "#", build_id.empty() && deleted ? "(deleted)" : build_id);
}

bool HasSection(Elf* elf, Elf64_Word type) {
  for (Elf_Scn* section = elf_nextscn(elf, nullptr); section != nullptr;
       section = elf_nextscn(elf, section)) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) != nullptr && header.sh_type == type) return true;
  }
  return false;
}

std::string BuildIdOf(Dwfl_Module* module) {
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  const int length = dwfl_module_build_id(module, &bits, &vaddr);
  if (length <= 0) return "";
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bits), static_cast<size_t>(length)));
}

}  // namespace

struct Symbolizer::LoadedModule {
  Dwfl* dwfl = nullptr;
  Dwfl_Module* module = nullptr;
  std::string file;   // what was opened: the path, or the debug file found by build-id
  std::string error;  // why module is null
  std::string path;   // as mapped, and the build-id the shim sent: for explanations
  std::string build_id;
  std::string roots_tried;  // Symbolizer::RootsKey() when it was opened
  bool dwarf_read = false;  // LoadDwarf ran: the two fields below are set
  std::string no_symbols;   // why a function name may be missing, when some are
  std::string no_lines;     // why source lines are missing
  // The module's symbols sorted by address, read at the first name lookup (names point into
  // libdwfl's data, so it goes before dwfl).
  std::unique_ptr<SymbolTable> symbols;
  uint64_t last_use = 0;  // Symbolizer::use_clock_ at its latest Load
  // The virtual address at which the file offset of an image's first mapping is loaded, or why
  // there is none: a process's load bias is that mapping's start minus it. Keyed by content, not
  // by a process's ModuleList, so it serves every process and cannot outlive its meaning.
  struct Vaddr {
    uint64_t value = 0;
    std::string error;  // why there is none
  };
  absl::flat_hash_map<uint64_t, Vaddr> vaddr_at_offset;
  // Resolved frames per file address, the same in every process that maps the image.
  absl::flat_hash_map<uint64_t, Frame> frames;
  // Frames read by name only (FrameDetail::kRuntimeNamesOnly); `frames` wins.
  absl::flat_hash_map<uint64_t, Frame> names;
  // Inline chains per file address; empty when nothing is inlined there.
  absl::flat_hash_map<uint64_t, std::vector<Frame>> inline_chains;

  ~LoadedModule() { Close(); }
  void Close() {
    symbols.reset();
    if (dwfl != nullptr) dwfl_end(dwfl);
    dwfl = nullptr;
    module = nullptr;
  }
  const SymbolTable& Symbols() {
    if (symbols == nullptr) symbols = std::make_unique<SymbolTable>(module);
    return *symbols;
  }
  void Open(const Dwfl_Callbacks* callbacks, const std::string& path) {
    Close();
    file = path;
    if (absl::Status regular = CheckRegularFile(path); !regular.ok()) {
      error = std::string(regular.message());
      return;
    }
    dwfl = dwfl_begin(callbacks);
    if (dwfl == nullptr) {
      error = absl::StrCat("dwfl_begin: ", dwfl_errmsg(-1));
      return;
    }
    dwfl_report_begin(dwfl);
    // Loaded at bias 0, so module addresses are the file's own virtual addresses: one session
    // serves every process that maps the file, wherever ASLR put it (lookups subtract the bias).
    module = dwfl_report_elf(dwfl, path.c_str(), path.c_str(), -1, 0, true);
    if (module == nullptr) error = absl::StrCat("cannot open ", path, ": ", dwfl_errmsg(-1));
    dwfl_report_end(dwfl, nullptr, nullptr);
  }
};

Symbolizer::Symbolizer(SymbolizerOptions options) : options_(std::move(options)) {
  // libdwfl reads a relative entry as relative to each binary's own folder (".debug"); the
  // user meant the current one.
  for (std::string& dir : options_.debug_dirs) {
    std::error_code error;
    const std::filesystem::path absolute = std::filesystem::absolute(dir, error);
    if (!error) dir = absolute.lexically_normal().string();
  }
  debuginfo_path_ = ":.debug";
  for (const std::string& dir : options_.debug_dirs) absl::StrAppend(&debuginfo_path_, ":", dir);
  absl::StrAppend(&debuginfo_path_, ":/usr/lib/debug");
  debuginfo_path_data_ = debuginfo_path_.data();
  callbacks_ = Dwfl_Callbacks{
      .find_elf = dwfl_build_id_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = dwfl_offline_section_address,
      .debuginfo_path = &debuginfo_path_data_,
  };
}

Symbolizer::~Symbolizer() = default;

size_t Symbolizer::addrinfo_calls() const {
  size_t calls = 0;
  for (const auto& [key, loaded] : loaded_) {
    if (loaded->symbols != nullptr) calls += loaded->symbols->addrinfo_calls();
  }
  return calls;
}

std::string Symbolizer::FindDebugFile(const std::string& build_id) const {
  if (build_id.size() < 4) return "";
  std::vector<std::string> roots = options_.debug_dirs;
  roots.push_back("/usr/lib/debug");
  for (const std::string& root : roots) {
    std::string candidate =
        absl::StrCat(root, "/.build-id/", build_id.substr(0, 2), "/", build_id.substr(2), ".debug");
    if (access(candidate.c_str(), R_OK) == 0) return candidate;
  }
  return "";
}

Symbolizer::LoadedModule* Symbolizer::Load(const std::string& path, const std::string& build_id,
                                           bool deleted) {
  std::string key = ImageKey(path, build_id, deleted);
  if (auto it = loaded_.find(key); it != loaded_.end()) {
    const bool look_again = it->second->module == nullptr && !options_.roots.empty() &&
                            it->second->roots_tried != RootsKey();
    if (!look_again) {
      it->second->last_use = ++use_clock_;
      return it->second.get();
    }
    loaded_.erase(it);  // with the frames cached as unresolved
  }
  if (options_.max_images > 0 && loaded_.size() >= options_.max_images) {
    // The least recently used one: O(images), once per image opened.
    auto oldest = loaded_.begin();
    for (auto it = loaded_.begin(); it != loaded_.end(); ++it) {
      if (it->second->last_use < oldest->second->last_use) oldest = it;
    }
    loaded_.erase(oldest);
  }
  auto& slot = loaded_[std::move(key)];
  slot = std::make_unique<LoadedModule>();
  slot->last_use = ++use_clock_;
  LoadedModule& loaded = *slot;
  loaded.path = path;
  loaded.build_id = build_id;
  loaded.roots_tried = RootsKey();
  if (deleted && build_id.empty()) {
    // Without a build-id nothing tells whether the file now at the path is the one that ran.
    loaded.error = absl::StrCat(path,
                                " was deleted or replaced after it was loaded, and the shim sent "
                                "no build-id to check a file against");
    return slot.get();
  }
  loaded.Open(&callbacks_, path);
  TryRoots(loaded, path, build_id);
  if (!build_id.empty()) {
    // The file at the path may not be the one that was loaded (a deploy replaced it while the
    // process ran): its symbols would name the wrong code. Its debug file, found by build-id,
    // describes the loaded image exactly, so it is used instead.
    const std::string on_disk = loaded.module != nullptr ? BuildIdOf(loaded.module) : "";
    if (on_disk != build_id) {
      const std::string problem =
          loaded.module == nullptr
              ? loaded.error
              : absl::StrCat(path, " has changed since it was loaded (build-id ", build_id,
                             on_disk.empty() ? ", the file has none"
                                             : absl::StrCat(", the file has ", on_disk),
                             ")");
      const std::string debug_file = FindDebugFile(build_id);
      if (debug_file.empty()) {
        loaded.Close();  // every lookup in this image says why
        loaded.error = absl::StrCat(problem, "; no debug file with that build-id was found");
        return slot.get();
      }
      loaded.Open(&callbacks_, debug_file);
      if (loaded.module == nullptr) {
        loaded.error = absl::StrCat(problem, "; ", loaded.error);
        return slot.get();
      }
    }
  }
  return slot.get();
}

void Symbolizer::set_roots(std::vector<std::string> roots) { options_.roots = std::move(roots); }

std::string Symbolizer::RootsKey() const { return absl::StrJoin(options_.roots, "\n"); }

void Symbolizer::TryRoots(LoadedModule& loaded, const std::string& path,
                          const std::string& build_id) {
  const auto is_loaded_image = [&build_id](const LoadedModule& candidate) {
    return candidate.module != nullptr &&
           (build_id.empty() || BuildIdOf(candidate.module) == build_id);
  };
  if (options_.roots.empty() || is_loaded_image(loaded)) return;
  for (const std::string& root : options_.roots) {
    loaded.Open(&callbacks_, root + path);
    if (is_loaded_image(loaded)) return;
  }
  loaded.Open(&callbacks_, path);  // none had it: what follows explains the file at the path
}

void Symbolizer::LoadDwarf(LoadedModule& loaded) {
  if (loaded.dwarf_read || loaded.module == nullptr) return;
  loaded.dwarf_read = true;
  ++dwarf_loads_;
  // What the image lacks, to explain frames that stay incomplete.
  Dwarf_Addr dwarf_bias = 0;
  const bool has_dwarf = dwfl_module_getdwarf(loaded.module, &dwarf_bias) != nullptr;
  if (!has_dwarf) {
    loaded.no_lines = absl::StrCat(
        "no debug info for ", loaded.path,
        loaded.build_id.empty() ? "" : absl::StrCat(" (build-id ", loaded.build_id, ")"));
  }
  GElf_Addr elf_bias = 0;
  Elf* elf = dwfl_module_getelf(loaded.module, &elf_bias);
  if (!has_dwarf && elf != nullptr && !HasSection(elf, SHT_SYMTAB)) {
    loaded.no_symbols =
        absl::StrCat(loaded.path,
                     " is stripped and has no debug info: only its exported (.dynsym) "
                     "functions have names");
  }
}

std::vector<Frame> Symbolizer::Symbolize(std::span<const uint64_t> return_addresses,
                                         const ModuleList* modules, uint16_t module_generation,
                                         FrameDetail detail) {
  std::vector<Frame> frames;
  frames.reserve(return_addresses.size());
  for (uint64_t address : return_addresses) {
    std::vector<Frame> expanded = SymbolizeWithInlines(address, modules, module_generation, detail);
    frames.insert(frames.end(), expanded.begin(), expanded.end());
  }
  return frames;
}

namespace {

// The name of a subprogram or inlined-subroutine DIE, following its abstract origin: the
// linkage name demangled when there is one (it carries the class and namespace), else the
// plain name.
std::string DieName(Dwarf_Die* die) {
  Dwarf_Attribute attribute;
  for (int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    if (dwarf_attr_integrate(die, name, &attribute) != nullptr) {
      if (const char* linkage = dwarf_formstring(&attribute); linkage != nullptr) {
        return Demangle(linkage);
      }
    }
  }
  if (dwarf_attr_integrate(die, DW_AT_name, &attribute) != nullptr) {
    if (const char* plain = dwarf_formstring(&attribute); plain != nullptr) return plain;
  }
  return "";
}

// The functions inlined at `file_pc` of `module`, innermost first, each with the source line
// inside it, then the containing function's frame (`physical`) with the line of the outermost
// inlined call. Empty when nothing is inlined there or there is no DWARF.
std::vector<Frame> InlineChain(Dwfl_Module* module, Dwarf_Addr file_pc, const Frame& physical) {
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dwfl_module_addrdie(module, file_pc, &bias);
  if (cu == nullptr) return {};
  // The innermost scope at the address, then every DIE that encloses it in the tree: the nested
  // inlined-subroutine instances up to the containing subprogram (as eu-addr2line -i does;
  // dwarf_getscopes alone can stop at the first inline level).
  Dwarf_Die* innermost = nullptr;
  if (dwarf_getscopes(cu, file_pc - bias, &innermost) <= 0) return {};
  Dwarf_Die start = innermost[0];
  free(innermost);
  Dwarf_Die* scopes = nullptr;
  const int count = dwarf_getscopes_die(&start, &scopes);
  if (count <= 0) return {};
  Dwarf_Files* files = nullptr;
  size_t file_count = 0;
  if (dwarf_getsrcfiles(cu, &files, &file_count) != 0) files = nullptr;

  std::vector<Frame> chain;
  std::string file = physical.file;
  int line = physical.line;
  for (int i = 0; i < count; ++i) {
    const int tag = dwarf_tag(&scopes[i]);
    if (tag == DW_TAG_subprogram) break;
    if (tag != DW_TAG_inlined_subroutine) continue;  // lexical blocks
    Frame frame = physical;
    frame.function = DieName(&scopes[i]);
    frame.file = file;
    frame.line = line;
    frame.inlined = true;
    chain.push_back(std::move(frame));
    // Where this inlined call was made: the location inside the next scope out.
    Dwarf_Attribute attribute;
    Dwarf_Word value = 0;
    file.clear();
    line = 0;
    if (files != nullptr &&
        dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attribute), &value) == 0) {
      if (const char* name = dwarf_filesrc(files, value, nullptr, nullptr); name != nullptr) {
        file = name;
      }
    }
    if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attribute), &value) == 0) {
      line = static_cast<int>(value);
    }
  }
  free(scopes);
  if (chain.empty()) return {};
  Frame outer = physical;
  outer.file = file;
  outer.line = line;
  chain.push_back(std::move(outer));
  return chain;
}

// The demangled name of the function at `file_pc`, from the ELF symbol tables (the image's own
// or its debug file's: no DWARF is read); empty when no symbol covers it.
std::string FunctionAt(const SymbolTable& symbols, Dwarf_Addr file_pc) {
  const char* name = symbols.Name(file_pc);
  if (name == nullptr) return "";
  // The ELF symbol table spells versioned symbols "name@@VERSION"; people search by name.
  std::string_view plain(name);
  plain = plain.substr(0, plain.find('@'));
  return Demangle(std::string(plain).c_str());
}

}  // namespace

std::vector<Frame> Symbolizer::SymbolizeWithInlines(uint64_t return_address,
                                                    const ModuleList* modules,
                                                    uint16_t module_generation,
                                                    FrameDetail detail) {
  Frame physical = SymbolizeReturnAddress(return_address, modules, module_generation, detail);
  if (physical.names_only || physical.function.empty() || physical.module.empty() ||
      physical.module_offset == 0) {
    return {physical};
  }
  const uint64_t file_pc = physical.module_offset - 1;
  // Only resolved frames get here, so their image was not deleted without a build-id.
  LoadedModule* loaded = Load(physical.module, physical.build_id, false);
  auto [it, inserted] = loaded->inline_chains.try_emplace(file_pc);
  if (inserted) {
    LoadDwarf(*loaded);
    if (loaded->module != nullptr) it->second = InlineChain(loaded->module, file_pc, physical);
  }
  if (it->second.empty()) return {physical};
  std::vector<Frame> chain = it->second;
  for (Frame& frame : chain) frame.address = return_address;
  return chain;
}

Frame Symbolizer::SymbolizeReturnAddress(uint64_t return_address, const ModuleList* modules,
                                         uint16_t module_generation, FrameDetail detail) {
  Frame frame;
  frame.address = return_address;
  if (modules == nullptr) {
    frame.unresolved = "no module list was received";
    return frame;
  }
  // A return address points after the call; the call itself is one byte earlier. That matters
  // when the call is the last instruction of a function (noreturn callee) or of an inline range.
  const uint64_t pc = return_address > 0 ? return_address - 1 : 0;
  // The mapping that held this address when the stack was captured: of the mappings dlclose()
  // removed after the capture, the first removed (a later one can only have been loaded there
  // after it); if none, the live mapping. Unload numbers wrap at 2^16, so they are compared as
  // differences.
  std::optional<size_t> found;
  int best_distance = 0;
  bool unloaded_here = false;  // some unloaded mapping covers the address
  bool live_here = false;
  for (size_t i = 0; i < modules->size(); ++i) {
    const ModuleMapping& m = (*modules)[i];
    if (pc < m.start || pc >= m.end) continue;
    if (!m.unloaded()) {
      live_here = true;
      continue;
    }
    unloaded_here = true;
    const auto distance = static_cast<int16_t>(m.unload_number() - module_generation);
    if (distance > 0 && (!found || distance < best_distance)) {
      found = i;
      best_distance = distance;
    }
  }
  // The shim keeps the unloads of the last census intervals or so. A stack older than that
  // (sent again after a reconnect, or captured before thousands of dlcloses within one
  // interval) may have run in a module that is no longer listed: whichever module is listed at
  // the address now may not be the one that ran.
  const bool unloads_since =
      modules->has_unload_history &&
      static_cast<int16_t>(modules->unload_generation - module_generation) > 0;
  const bool history_complete =
      !modules->has_unload_history ||
      static_cast<int16_t>(modules->unload_history_start - module_generation) <= 1;
  if (unloads_since && !history_complete && (unloaded_here || !live_here)) {
    frame.unresolved =
        "the module mapped here when the stack was captured is unknown: more modules were "
        "unloaded since than the shim keeps a record of";
    return frame;
  }
  for (size_t i = 0; i < modules->size() && !found; ++i) {
    const ModuleMapping& m = (*modules)[i];
    if (!m.unloaded() && pc >= m.start && pc < m.end) found = i;
  }
  if (!found) {
    frame.unresolved = "no mapped file contains the address";
    return frame;
  }
  const ModuleMapping& mapping = (*modules)[*found];
  const size_t image_start = ImageStart(*modules, *found);
  const ModuleMapping& image = (*modules)[image_start];
  frame.module = mapping.path;
  frame.build_id = image.build_id;
  frame.module_unloaded = mapping.unloaded();
  LoadedModule* loaded = Load(mapping.path, image.build_id, image.deleted);

  auto vaddr_it = loaded->vaddr_at_offset.find(image.file_offset);
  if (vaddr_it == loaded->vaddr_at_offset.end()) {
    // The debug file found by build-id has the same program headers as the loaded image.
    const absl::StatusOr<uint64_t> vaddr = VaddrOfFileOffset(
        loaded->module != nullptr ? loaded->file : mapping.path, image.file_offset);
    LoadedModule::Vaddr entry;
    if (vaddr.ok()) {
      entry.value = *vaddr;
    } else {
      entry.error = std::string(vaddr.status().message());
    }
    vaddr_it = loaded->vaddr_at_offset.emplace(image.file_offset, std::move(entry)).first;
  }
  if (!vaddr_it->second.error.empty()) {
    frame.module_offset = return_address - mapping.start + mapping.file_offset;
    frame.unresolved = loaded->module == nullptr
                           ? loaded->error
                           : absl::StrCat("cannot compute load bias: ", vaddr_it->second.error);
    return frame;
  }
  const uint64_t bias = image.start - vaddr_it->second.value;
  frame.module_offset = return_address - bias;

  // The same code at the same file address, whatever the process: cached by file address.
  const uint64_t file_pc = pc - bias;
  // A runtime module's frames need only their names to choose and group by a headline frame.
  const bool names_only = detail == FrameDetail::kRuntimeNamesOnly && IsRuntimeFrame(frame);
  for (const auto* cache : {&loaded->frames, names_only ? &loaded->names : nullptr}) {
    if (cache == nullptr) continue;
    if (auto it = cache->find(file_pc); it != cache->end()) {
      Frame cached = it->second;
      cached.address = return_address;
      cached.module_unloaded = frame.module_unloaded;
      return cached;
    }
  }

  if (loaded->module == nullptr) {
    frame.unresolved = loaded->error;
  } else if (names_only) {
    frame.function = FunctionAt(loaded->Symbols(), file_pc);
    frame.names_only = true;
    if (frame.function.empty()) frame.unresolved = "no symbol covers the address";
  } else {
    LoadDwarf(*loaded);
    frame.function = FunctionAt(loaded->Symbols(), file_pc);
    if (frame.function.empty()) {
      frame.unresolved = !loaded->no_symbols.empty() ? loaded->no_symbols
                                                     : std::string("no symbol covers the address");
    }
    if (Dwfl_Line* line = dwfl_module_getsrc(loaded->module, file_pc); line != nullptr) {
      int lineno = 0;
      if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
          file != nullptr) {
        frame.file = file;
        frame.line = lineno;
      }
    }
    if (frame.unresolved.empty() && frame.file.empty()) {
      frame.unresolved =
          !loaded->no_lines.empty() ? loaded->no_lines : std::string("no line information here");
    }
  }
  (names_only ? loaded->names : loaded->frames).emplace(file_pc, frame);
  return frame;
}

}  // namespace dw::report
