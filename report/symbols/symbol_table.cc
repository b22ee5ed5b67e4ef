#include "report/symbols/symbol_table.h"

#include <elf.h>
#include <gelf.h>

#include <algorithm>
#include <tuple>

namespace dw::report {
namespace {

// elfutils' binding_value: global over weak over local; anything else (STB_GNU_UNIQUE) last.
int BindingRank(const GElf_Sym& sym) {
  switch (GELF_ST_BIND(sym.st_info)) {
    case STB_GLOBAL:
      return 3;
    case STB_WEAK:
      return 2;
    case STB_LOCAL:
      return 1;
    default:
      return 0;
  }
}

// The symbols dwfl_module_addrinfo considers at all (search_table's filter, but for the
// address test, which is the lookup's).
bool Eligible(const char* name, const GElf_Sym& sym) {
  const int type = GELF_ST_TYPE(sym.st_info);
  return name != nullptr && name[0] != '\0' && sym.st_shndx != SHN_UNDEF && type != STT_SECTION &&
         type != STT_FILE && type != STT_TLS;
}

}  // namespace

SymbolTable::SymbolTable(Dwfl_Module* module) : module_(module) {
  GElf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(module, &bias);
  GElf_Ehdr ehdr;
  if (elf == nullptr || gelf_getehdr(elf, &ehdr) == nullptr) return;
  // Relocatable files and ppc64's function descriptors give symbols a second, resolved value
  // that libdwfl also tries; nothing the collector symbolises needs them, so libdwfl answers.
  if (ehdr.e_type == ET_REL || ehdr.e_machine == EM_PPC64) return;
  ok_ = true;
  const int count = dwfl_module_getsymtab(module);
  if (count <= 0) return;  // no symbols: addrinfo finds none either
  const int first_global = dwfl_module_getsymtab_first_global(module);
  if (first_global < 0) {
    entries_.clear();
    return;
  }
  // __libdwfl_addrsym searches [first_global, count) first (from 1 when first_global is 0),
  // then [1, first_global) when that found no sized symbol.
  const int global_start = first_global == 0 ? 1 : first_global;
  has_locals_pass_ = first_global > 1;
  for (int i = 1; i < count; ++i) {
    GElf_Sym sym;
    GElf_Addr value = 0;
    GElf_Word shndx = 0;
    const char* name = dwfl_module_getsym_info(module, i, &sym, &value, &shndx, nullptr, nullptr);
    if (!Eligible(name, sym)) continue;
    entries_.push_back(Entry{.value = value,
                             .size = sym.st_size,
                             .name = name,
                             .index = i,
                             .binding = BindingRank(sym),
                             .global = i >= global_start,
                             .shndx = shndx});
  }
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.value, a.index) < std::tie(b.value, b.index);
  });
  uint64_t global_end = 0, local_end = 0, any_end = 0;
  for (const Entry& entry : entries_) {
    const uint64_t end = entry.value + entry.size;
    (entry.global ? global_end : local_end) = std::max(entry.global ? global_end : local_end, end);
    any_end = std::max(any_end, end);
    max_end_global_.push_back(global_end);
    max_end_local_.push_back(local_end);
    max_end_any_.push_back(any_end);
  }
  ReadSections();
}

// libdwfl's cache_sections: the main ELF's SHF_ALLOC sections at module addresses, sorted by
// start, end, then section index.
void SymbolTable::ReadSections() {
  GElf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(module_, &bias);
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || (shdr.sh_flags & SHF_ALLOC) == 0) continue;
    sections_.push_back(Section{.start = shdr.sh_addr + bias,
                                .end = shdr.sh_addr + bias + shdr.sh_size,
                                .index = elf_ndxscn(scn)});
  }
  std::sort(sections_.begin(), sections_.end(), [](const Section& a, const Section& b) {
    return std::tie(a.start, a.end, a.index) < std::tie(b.start, b.end, b.index);
  });
}

// libdwfl's find_section, binary search and all: a section's end counts as inside it unless
// the next section starts there.
size_t SymbolTable::SectionOf(uint64_t address) const {
  size_t low = 0, high = sections_.size();
  while (low < high) {
    size_t mid = (low + high) / 2;
    if (address < sections_[mid].start) {
      high = mid;
    } else if (address > sections_[mid].end) {
      low = mid + 1;
    } else {
      if (address == sections_[mid].end && mid + 1 < sections_.size() &&
          address == sections_[mid + 1].start) {
        ++mid;
      }
      return sections_[mid].index;
    }
  }
  return SHN_UNDEF;
}

// same_section of dwfl_module_addrinfo (which does not adjust st_value): absolute and other
// special symbols only at their exact address, others when their value lies in the address's
// section.
bool SymbolTable::SameSection(const Entry& entry, uint64_t address) const {
  if (entry.shndx >= SHN_LORESERVE) return entry.value == address;
  return SectionOf(address) == SectionOf(entry.value);
}

// try_sym_value's choice among sized symbols containing the address, in scan order: a later
// one replaces the current if it starts closer or binds more strongly, or starts at the same
// place and is smaller without binding more weakly (or as small and binds more strongly).
const SymbolTable::Entry* SymbolTable::Closest(const std::vector<const Entry*>& containing,
                                               bool global) const {
  const Entry* closest = nullptr;
  for (const Entry* entry : containing) {
    if (entry->global != global) continue;
    if (closest == nullptr || closest->value < entry->value || closest->binding < entry->binding) {
      closest = entry;
    } else if (closest->value == entry->value &&
               ((closest->size > entry->size && closest->binding <= entry->binding) ||
                (closest->size >= entry->size && closest->binding < entry->binding))) {
      closest = entry;
    }
  }
  return closest;
}

const SymbolTable::Entry* SymbolTable::SizelessAt(uint64_t value, uint64_t address,
                                                  bool global) const {
  auto first = std::lower_bound(entries_.begin(), entries_.end(), value,
                                [](const Entry& e, uint64_t v) { return e.value < v; });
  const Entry* found = nullptr;
  for (auto it = first; it != entries_.end() && it->value == value; ++it) {
    if (it->global == global && it->size == 0 && SameSection(*it, address)) found = &*it;
  }
  return found;  // entries at one value are in index order: the last is the last scanned
}

// __libdwfl_addrsym without the scan. A sizeless label is chosen only when no sized symbol
// contains the address; then only a label at or above every lower symbol's end (min_label) can
// win, so the label sits at the highest end of the symbols below the address, and of those the
// last one scanned in the address's section wins.
const char* SymbolTable::Name(uint64_t address) const {
  if (!ok_) {
    ++addrinfo_calls_;
    GElf_Off offset = 0;
    GElf_Sym sym;
    return dwfl_module_addrinfo(module_, address, &offset, &sym, nullptr, nullptr, nullptr);
  }
  const auto above = std::upper_bound(entries_.begin(), entries_.end(), address,
                                      [](uint64_t a, const Entry& e) { return a < e.value; });
  const size_t below = static_cast<size_t>(above - entries_.begin());  // entries with value <= a
  if (below == 0) return nullptr;
  // Sized symbols containing the address: walk down while some symbol further down ends above it.
  std::vector<const Entry*> containing;
  for (size_t i = below; i > 0 && max_end_any_[i - 1] > address; --i) {
    const Entry& entry = entries_[i - 1];
    if (entry.size != 0 && address - entry.value < entry.size) containing.push_back(&entry);
  }
  std::sort(containing.begin(), containing.end(),
            [](const Entry* a, const Entry* b) { return a->index < b->index; });
  if (const Entry* closest = Closest(containing, true)) return closest->name;
  const uint64_t global_label = max_end_global_[below - 1];
  const Entry* sizeless = SizelessAt(global_label, address, true);
  if (!has_locals_pass_ || (sizeless != nullptr && global_label == address)) {
    return sizeless != nullptr ? sizeless->name : nullptr;
  }
  if (const Entry* closest = Closest(containing, false)) return closest->name;
  const uint64_t local_label = max_end_local_[below - 1];
  const uint64_t min_label = std::max(global_label, local_label);
  if (const Entry* local = SizelessAt(min_label, address, false)) return local->name;
  return sizeless != nullptr && global_label == min_label ? sizeless->name : nullptr;
}

}  // namespace dw::report
