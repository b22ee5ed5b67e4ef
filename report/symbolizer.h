// symbolizer.h: turns the return addresses of a census stack into functions and file:line.
//
// Uses elfutils libdwfl offline: each module of the traced process is opened from disk at the
// load bias computed from the census ModuleList, so it works after the process has exited. It
// never fails hard: a frame that cannot be resolved keeps its module and offset plus a reason.
//
// Thread-safety: not thread-safe (caches and libdwfl handles are unsynchronised); use one
// Symbolizer per thread. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "report/census.h"

namespace dw::report {

struct Frame {
  uint64_t address = 0;        // the return address as sent by the shim
  std::string function;        // demangled; empty when unresolved
  std::string file;            // source file; empty without line information
  int line = 0;                // 0 without line information
  std::string module;          // path of the mapped file; empty when no mapping contains address
  uint64_t module_offset = 0;  // address - load bias (an ELF virtual address), when module known
  std::string unresolved;      // why `function` is empty (empty when resolved)
  // True when the compiler inlined this function into the next frame, which has the same
  // address: one return address can stand for several source-level calls.
  bool inlined = false;

  std::string AddressHex() const;
  // "function (file:line)", "function", or "module+0xoffset" as available.
  std::string Describe() const;
};

// The load bias of the module at `path` in `modules`: the value to add to the ELF's virtual
// addresses to get run-time addresses. Computed from the mapping with the lowest file offset and
// the PT_LOAD segment covering that offset, so it is right for PIEs, shared libraries and non-PIE
// executables (bias 0) alike.
absl::StatusOr<uint64_t> ComputeLoadBias(const ModuleList& modules, const std::string& path);

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Symbolises return addresses (innermost first), expanding each into the functions inlined
  // at that address (marked `inlined`) followed by the function that contains it. `modules`
  // may be null (no ModuleList seen).
  std::vector<Frame> Symbolize(std::span<const uint64_t> return_addresses,
                               const ModuleList* modules);
  // One return address, as the function containing it (no inline expansion).
  Frame SymbolizeReturnAddress(uint64_t return_address, const ModuleList* modules);
  // One return address with its inlined functions, innermost first; the last frame is the
  // function containing the address, with the source line of the call it makes.
  std::vector<Frame> SymbolizeWithInlines(uint64_t return_address, const ModuleList* modules);

 private:
  struct LoadedModule;
  LoadedModule* Load(const std::string& path);

  // One libdwfl session per module file, loaded at bias 0: opened once, reused for every frame
  // of every process that maps it.
  absl::flat_hash_map<std::string, std::unique_ptr<LoadedModule>> loaded_;
  // Bias per (module list, path): the same ModuleList object is shared by many sites.
  absl::flat_hash_map<std::pair<const ModuleList*, std::string>, absl::StatusOr<uint64_t>> biases_;
  // Resolved frames per (path, file address).
  absl::flat_hash_map<std::pair<std::string, uint64_t>, Frame> frames_;
  // Inline chains per (path, file address); empty when nothing is inlined there.
  absl::flat_hash_map<std::pair<std::string, uint64_t>, std::vector<Frame>> inline_chains_;
};

// Demangles a C++ symbol; returns the input when it is not a mangled name.
std::string Demangle(const char* symbol);

}  // namespace dw::report
