// symbol_table.h: the function names of one libdwfl module, looked up by address in O(log n).
//
// dwfl_module_addrinfo scans the whole symbol table for every address (31k .dynsym entries for
// a stripped cc1plus), which made symbolising big programs' stacks the collector's main cost.
// SymbolTable reads the same symbols once (dwfl_module_getsymtab/getsym_info: the table libdwfl
// would pick, .symtab, a debug file's, .gnu_debugdata or .dynsym), sorts them by address and
// answers with the symbol dwfl_module_addrinfo would have chosen: its rules (global before
// weak before local, sized symbols containing the address before sizeless labels, the
// innermost of nested ones, sizeless labels only in the address's section and not below any
// other symbol's end) are reproduced in symbol_table.cc, from elfutils 0.188's
// libdwfl/dwfl_module_addrsym.c.
//
// Thread-safety: not thread-safe (libdwfl handles are not). Allocation: yes (collector code).
// Never runs inside a hook.
#pragma once

#include <elfutils/libdwfl.h>

#include <cstdint>
#include <vector>

namespace dw::report {

class SymbolTable {
 public:
  // Reads the symbols of `module` (which must outlive the table: names point into its ELF
  // data). ok() is false where the rules cannot be reproduced (function descriptors, relocatable
  // files): Name then asks libdwfl for each address.
  explicit SymbolTable(Dwfl_Module* module);

  // The name of the symbol covering module address `address`, exactly as dwfl_module_addrinfo
  // returns it; nullptr when none does.
  const char* Name(uint64_t address) const;

  bool ok() const { return ok_; }
  // How many lookups went to dwfl_module_addrinfo (for tests: none when ok()).
  size_t addrinfo_calls() const { return addrinfo_calls_; }

 private:
  struct Entry {
    uint64_t value = 0;  // module address (st_value with the module's bias)
    uint64_t size = 0;
    const char* name = nullptr;
    int index = 0;        // in libdwfl's numbering: the scan order
    int binding = 0;      // higher is preferred, as elfutils ranks them
    bool global = false;  // searched in the first pass (libdwfl's first_global onwards)
    uint32_t shndx = 0;   // the symbol's section as libdwfl reports it
  };
  // An allocated section of the main ELF, as libdwfl's find_section sees it.
  struct Section {
    uint64_t start = 0;
    uint64_t end = 0;
    size_t index = 0;
  };

  void ReadSections();
  size_t SectionOf(uint64_t address) const;  // 0 (SHN_UNDEF) when none
  bool SameSection(const Entry& entry, uint64_t address) const;
  // The innermost sized symbol of one pass containing `address`, chosen as libdwfl does.
  const Entry* Closest(const std::vector<const Entry*>& containing, bool global) const;
  // The sizeless label of one pass at `value` in `address`'s section, last in scan order.
  const Entry* SizelessAt(uint64_t value, uint64_t address, bool global) const;

  Dwfl_Module* module_;
  bool ok_ = false;
  bool has_locals_pass_ = false;  // libdwfl's first_global > 1
  std::vector<Entry> entries_;    // sorted by value, then index
  // Per entry: the highest end (value + size, a sizeless one's value) among entries [0, i] of
  // each pass, and of both (to stop the backward scan for containing symbols).
  std::vector<uint64_t> max_end_global_;
  std::vector<uint64_t> max_end_local_;
  std::vector<uint64_t> max_end_any_;
  std::vector<Section> sections_;
  mutable size_t addrinfo_calls_ = 0;
};

}  // namespace dw::report
