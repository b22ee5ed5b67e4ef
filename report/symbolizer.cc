#include "report/symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dw::report {
namespace {

// Reads the program headers of the ELF at `path` and returns the virtual address that file offset
// `file_offset` is loaded at (PT_LOAD maps p_offset to p_vaddr).
absl::StatusOr<uint64_t> VaddrOfFileOffset(const std::string& path, uint64_t file_offset) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
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

const Dwfl_Callbacks kOfflineCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

}  // namespace

std::string Frame::AddressHex() const { return absl::StrFormat("0x%x", address); }

std::string Frame::Describe() const {
  if (!function.empty()) {
    const char* inlined_note = inlined ? " [inlined]" : "";
    if (!file.empty()) return absl::StrFormat("%s (%s:%d)%s", function, file, line, inlined_note);
    return absl::StrCat(function, inlined_note);
  }
  if (!module.empty()) return absl::StrFormat("%s+0x%x", module, module_offset);
  return AddressHex();
}

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

absl::StatusOr<uint64_t> ComputeLoadBias(const ModuleList& modules, const std::string& path) {
  const ModuleMapping* lowest = nullptr;
  for (const ModuleMapping& mapping : modules) {
    if (mapping.path == path && (lowest == nullptr || mapping.file_offset < lowest->file_offset)) {
      lowest = &mapping;
    }
  }
  if (lowest == nullptr) return absl::NotFoundError("module not in the module list");
  absl::StatusOr<uint64_t> vaddr = VaddrOfFileOffset(path, lowest->file_offset);
  if (!vaddr.ok()) return vaddr.status();
  return lowest->start - *vaddr;
}

struct Symbolizer::LoadedModule {
  Dwfl* dwfl = nullptr;
  Dwfl_Module* module = nullptr;
  std::string error;  // why module is null

  ~LoadedModule() {
    if (dwfl != nullptr) dwfl_end(dwfl);
  }
};

Symbolizer::Symbolizer() = default;
Symbolizer::~Symbolizer() = default;

Symbolizer::LoadedModule* Symbolizer::Load(const std::string& path) {
  auto& slot = loaded_[path];
  if (slot != nullptr) return slot.get();
  slot = std::make_unique<LoadedModule>();
  slot->dwfl = dwfl_begin(&kOfflineCallbacks);
  if (slot->dwfl == nullptr) {
    slot->error = absl::StrCat("dwfl_begin: ", dwfl_errmsg(-1));
    return slot.get();
  }
  dwfl_report_begin(slot->dwfl);
  // Loaded at bias 0, so module addresses are the file's own virtual addresses: one session
  // serves every process that maps the file, wherever ASLR put it (lookups subtract the bias).
  slot->module = dwfl_report_elf(slot->dwfl, path.c_str(), path.c_str(), -1, 0, true);
  if (slot->module == nullptr) slot->error = absl::StrCat("cannot load ELF: ", dwfl_errmsg(-1));
  dwfl_report_end(slot->dwfl, nullptr, nullptr);
  return slot.get();
}

std::vector<Frame> Symbolizer::Symbolize(std::span<const uint64_t> return_addresses,
                                         const ModuleList* modules) {
  std::vector<Frame> frames;
  frames.reserve(return_addresses.size());
  for (uint64_t address : return_addresses) {
    std::vector<Frame> expanded = SymbolizeWithInlines(address, modules);
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

}  // namespace

std::vector<Frame> Symbolizer::SymbolizeWithInlines(uint64_t return_address,
                                                    const ModuleList* modules) {
  Frame physical = SymbolizeReturnAddress(return_address, modules);
  if (physical.function.empty() || physical.module.empty() || physical.module_offset == 0) {
    return {physical};
  }
  const uint64_t file_pc = physical.module_offset - 1;
  const auto key = std::make_pair(physical.module, file_pc);
  auto [it, inserted] = inline_chains_.try_emplace(key);
  if (inserted) {
    LoadedModule* loaded = Load(physical.module);
    if (loaded->module != nullptr) it->second = InlineChain(loaded->module, file_pc, physical);
  }
  if (it->second.empty()) return {physical};
  std::vector<Frame> chain = it->second;
  for (Frame& frame : chain) frame.address = return_address;
  return chain;
}

Frame Symbolizer::SymbolizeReturnAddress(uint64_t return_address, const ModuleList* modules) {
  Frame frame;
  frame.address = return_address;
  if (modules == nullptr) {
    frame.unresolved = "no module list was received";
    return frame;
  }
  // A return address points after the call; the call itself is one byte earlier. That matters
  // when the call is the last instruction of a function (noreturn callee) or of an inline range.
  const uint64_t pc = return_address > 0 ? return_address - 1 : 0;
  const ModuleMapping* mapping = nullptr;
  for (const ModuleMapping& m : *modules) {
    if (pc >= m.start && pc < m.end) {
      mapping = &m;
      break;
    }
  }
  if (mapping == nullptr) {
    frame.unresolved = "no mapped file contains the address";
    return frame;
  }
  frame.module = mapping->path;

  auto [bias_it, inserted] =
      biases_.try_emplace(std::make_pair(modules, mapping->path), absl::StatusOr<uint64_t>(0));
  if (inserted) bias_it->second = ComputeLoadBias(*modules, mapping->path);
  if (!bias_it->second.ok()) {
    frame.module_offset = return_address - mapping->start + mapping->file_offset;
    frame.unresolved =
        absl::StrCat("cannot compute load bias: ", bias_it->second.status().message());
    return frame;
  }
  const uint64_t bias = *bias_it->second;
  frame.module_offset = return_address - bias;

  // The same code at the same file address, whatever the process: cached by file address.
  const uint64_t file_pc = pc - bias;
  const auto key = std::make_pair(mapping->path, file_pc);
  if (auto it = frames_.find(key); it != frames_.end()) {
    Frame cached = it->second;
    cached.address = return_address;
    return cached;
  }

  LoadedModule* loaded = Load(mapping->path);
  if (loaded->module == nullptr) {
    frame.unresolved = loaded->error;
  } else {
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char* name =
        dwfl_module_addrinfo(loaded->module, file_pc, &offset, &sym, nullptr, nullptr, nullptr);
    if (name != nullptr) {
      // The ELF symbol table spells versioned symbols "name@@VERSION"; people search by name.
      std::string_view plain(name);
      plain = plain.substr(0, plain.find('@'));
      frame.function = Demangle(std::string(plain).c_str());
    } else {
      frame.unresolved = "no symbol covers the address";
    }
    if (Dwfl_Line* line = dwfl_module_getsrc(loaded->module, file_pc); line != nullptr) {
      int lineno = 0;
      if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
          file != nullptr) {
        frame.file = file;
        frame.line = lineno;
      }
    }
  }
  frames_.emplace(key, frame);
  return frame;
}

}  // namespace dw::report
