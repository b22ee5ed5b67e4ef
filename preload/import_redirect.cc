#include "preload/import_redirect.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>

namespace dw {
namespace {

struct DynamicTables {
  const ElfW(Rela) * relocations[2] = {};  // DT_JMPREL (PLT) and DT_RELA (GOT, -fno-plt code)
  size_t relocation_bytes[2] = {};
  const ElfW(Sym) * symbols = nullptr;
  const char* strings = nullptr;
};

// glibc has already relocated the pointers of a loaded object's dynamic section (x86-64).
DynamicTables ReadDynamic(const link_map* map) {
  DynamicTables tables;
  for (const ElfW(Dyn)* entry = map->l_ld; entry->d_tag != DT_NULL; ++entry) {
    switch (entry->d_tag) {
      case DT_JMPREL:
        tables.relocations[0] = reinterpret_cast<const ElfW(Rela)*>(entry->d_un.d_ptr);
        break;
      case DT_PLTRELSZ:
        tables.relocation_bytes[0] = entry->d_un.d_val;
        break;
      case DT_RELA:
        tables.relocations[1] = reinterpret_cast<const ElfW(Rela)*>(entry->d_un.d_ptr);
        break;
      case DT_RELASZ:
        tables.relocation_bytes[1] = entry->d_un.d_val;
        break;
      case DT_SYMTAB:
        tables.symbols = reinterpret_cast<const ElfW(Sym)*>(entry->d_un.d_ptr);
        break;
      case DT_STRTAB:
        tables.strings = reinterpret_cast<const char*>(entry->d_un.d_ptr);
        break;
    }
  }
  return tables;
}

void** FindSlot(const link_map* map, const DynamicTables& tables, const char* symbol) {
  if (tables.symbols == nullptr || tables.strings == nullptr) return nullptr;
  for (int table = 0; table < 2; ++table) {
    const size_t count = tables.relocation_bytes[table] / sizeof(ElfW(Rela));
    for (size_t i = 0; i < count; ++i) {
      const ElfW(Rela)& relocation = tables.relocations[table][i];
      const auto type = ELF64_R_TYPE(relocation.r_info);
      if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
      const ElfW(Sym)& entry = tables.symbols[ELF64_R_SYM(relocation.r_info)];
      if (strcmp(tables.strings + entry.st_name, symbol) != 0) continue;
      return reinterpret_cast<void**>(map->l_addr + relocation.r_offset);
    }
  }
  return nullptr;
}

struct RelroSearch {
  uintptr_t load_address;
  uintptr_t begin = 0;
  uintptr_t end = 0;
};

int FindRelro(struct dl_phdr_info* info, size_t, void* argument) {
  auto* search = static_cast<RelroSearch*>(argument);
  if (info->dlpi_addr != search->load_address) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    if (info->dlpi_phdr[i].p_type != PT_GNU_RELRO) continue;
    search->begin = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
    search->end = search->begin + info->dlpi_phdr[i].p_memsz;
  }
  return 1;
}

// Writes `value` into `slot`. A slot in the object's RELRO range is read-only after loading:
// it is made writable for the store and read-only again; any other slot is writable already.
bool WriteSlot(const link_map* map, void** slot, void* value) {
  RelroSearch relro{map->l_addr};
  dl_iterate_phdr(FindRelro, &relro);
  const auto address = reinterpret_cast<uintptr_t>(slot);
  const bool protected_slot = address >= relro.begin && address < relro.end;
  void* const page = reinterpret_cast<void*>(address & ~uintptr_t{4095});
  if (protected_slot && mprotect(page, 4096, PROT_READ | PROT_WRITE) != 0) return false;
  __atomic_store_n(slot, value, __ATOMIC_RELEASE);
  if (protected_slot) mprotect(page, 4096, PROT_READ);
  return true;
}

}  // namespace

bool RedirectImport(void* handle, const char* symbol, void* replacement, void** original) {
  link_map* map = nullptr;
  if (handle == nullptr || dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) {
    return false;
  }
  void** slot = FindSlot(map, ReadDynamic(map), symbol);
  if (slot == nullptr) return false;
  void* const previous = *slot;
  if (!WriteSlot(map, slot, replacement)) return false;
  *original = previous;
  return true;
}

}  // namespace dw
