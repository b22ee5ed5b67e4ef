// symbolizer.h: turns the return addresses of a census stack into functions and file:line.
//
// Uses elfutils libdwfl offline: each module of the traced process is opened from disk at the
// load bias computed from the census ModuleList, so it works after the process has exited. When
// the shim sent the image's build-id, the file at the path must carry the same one; otherwise
// (the binary was replaced after it was loaded) its separate debug file is looked up by build-id
// instead, and failing that the frame is left unresolved. Debug info split into
// /usr/lib/debug/.build-id (Debian's -dbgsym packages) is found the same way. It never fails
// hard: a frame that cannot be resolved keeps its module and offset plus a reason.
//
// An image's DWARF is read only when a frame in it needs a line or its inlined functions: names
// come from the ELF symbol tables, which need no decompression, while opening a compressed debug
// file (Debian's libc6-dbg) inflates all its .debug_* sections, 20-40 ms for glibc's.
// Those names are looked up in a SymbolTable (symbol_table.h) built once per image: sorted by
// address, it answers as dwfl_module_addrinfo does without scanning every symbol per address.
//
// Thread-safety: not thread-safe (caches and libdwfl handles are unsynchronised); use one
// Symbolizer per thread. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "elfutils/libdwfl.h"
#include "report/decode/census.h"
#include "report/symbols/frames.h"

namespace dw::report {

// The load bias of the module at `path` in `modules`: the value to add to the ELF's virtual
// addresses to get run-time addresses. Computed from the mapping with the lowest file offset and
// the PT_LOAD segment covering that offset, so it is right for PIEs, shared libraries and non-PIE
// executables (bias 0) alike. Mappings dlclose() removed are not considered.
absl::StatusOr<uint64_t> ComputeLoadBias(const ModuleList& modules, const std::string& path);

// The load bias of an image from its first mapping (the lowest file offset) and the ELF file
// whose program headers describe it: the file itself, or its debug file. ComputeLoadBias and the
// Symbolizer both use it.
absl::StatusOr<uint64_t> ImageLoadBias(const ModuleMapping& first, const std::string& elf_file);

// How much of a frame a lookup reads.
enum class FrameDetail {
  kFull,  // function, file:line and inlined functions
  // Frames of runtime modules (IsRuntimeFrame) by function name only, never from DWARF
  // (Frame::names_only): what choosing a headline frame and grouping by it need. Others in full.
  kRuntimeNamesOnly,
};

struct SymbolizerOptions {
  // Searched for <dir>/.build-id/xx/yyyy.debug before /usr/lib/debug.
  std::vector<std::string> debug_dirs = {};
  // How many images stay open at most (0: no limit). Past it, the image used least recently is
  // closed with everything cached about it (reopened if needed again). `driftwatch collect`
  // shares one Symbolizer among all the processes it sees for days: every process maps the same
  // libraries, so libc's tables are read once, not once per lifetime, and the images of
  // programs that came and went do not pile up.
  size_t max_images = 0;
  // Other roots the process's paths may be under, tried in order when the file at a module's
  // path is missing here or is not the image that was loaded (another build-id): for a live
  // process in a container, "/proc/<pid>/root" is its own filesystem (`driftwatch collect`,
  // which sets them per process with set_roots).
  std::vector<std::string> roots = {};
};

class Symbolizer {
 public:
  explicit Symbolizer(SymbolizerOptions options = {});
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Symbolises return addresses (innermost first), expanding each into the functions inlined
  // at that address (marked `inlined`) followed by the function that contains it. `modules`
  // may be null (no ModuleList seen). `module_generation` is the stack's (SiteStack): an
  // address is looked up in the module that was mapped there when the stack was captured, which
  // is the one unloaded first after it, if any, else the live one.
  std::vector<Frame> Symbolize(std::span<const uint64_t> return_addresses,
                               const ModuleList* modules, uint16_t module_generation = 0,
                               FrameDetail detail = FrameDetail::kFull);
  // One return address, as the function containing it (no inline expansion).
  Frame SymbolizeReturnAddress(uint64_t return_address, const ModuleList* modules,
                               uint16_t module_generation = 0,
                               FrameDetail detail = FrameDetail::kFull);
  // One return address with its inlined functions, innermost first; the last frame is the
  // function containing the address, with the source line of the call it makes.
  std::vector<Frame> SymbolizeWithInlines(uint64_t return_address, const ModuleList* modules,
                                          uint16_t module_generation = 0,
                                          FrameDetail detail = FrameDetail::kFull);

  // The roots for the lookups that follow (SymbolizerOptions::roots): one Symbolizer serves
  // processes of several containers. An image opened under other roots stays as it is (its
  // build-id says it is the same image); one that could not be found is looked for again.
  void set_roots(std::vector<std::string> roots);

  // How many images' DWARF has been read so far (for tests: a lookup that needs only names
  // must not read any).
  size_t dwarf_loads() const { return dwarf_loads_; }
  // How many names were looked up with dwfl_module_addrinfo, which scans the whole symbol table
  // (for tests: the sorted SymbolTable answers instead wherever it can).
  size_t addrinfo_calls() const;
  // Images open now (at most SymbolizerOptions::max_images when that is set).
  size_t open_images() const { return loaded_.size(); }

 private:
  struct LoadedModule;
  // The image mapped from `path` with `build_id` (may be empty: not checked), opened once.
  // `deleted`: the maps said the file was deleted or replaced since it was mapped.
  LoadedModule* Load(const std::string& path, const std::string& build_id, bool deleted);
  std::string FindDebugFile(const std::string& build_id) const;
  // When the file at `path` is not the loaded image, opens the first root's copy that is.
  void TryRoots(LoadedModule& loaded, const std::string& path, const std::string& build_id);
  std::string RootsKey() const;
  // Reads the image's DWARF once, and what it lacks to explain incomplete frames.
  void LoadDwarf(LoadedModule& loaded);

  SymbolizerOptions options_;
  std::string debuginfo_path_;  // libdwfl's search path: ":.debug:<debug dirs>:/usr/lib/debug"
  char* debuginfo_path_data_ = nullptr;  // libdwfl takes the path by char**
  Dwfl_Callbacks callbacks_;
  // One libdwfl session per image (path and build-id), loaded at bias 0: opened once, reused for
  // every frame of every process that maps it. Everything cached about an image (its resolved
  // frames, load biases) lives in its LoadedModule, so closing it forgets all of that.
  absl::flat_hash_map<std::string, std::unique_ptr<LoadedModule>> loaded_;
  uint64_t use_clock_ = 0;  // ticks at every Load, for closing the least recently used image
  size_t dwarf_loads_ = 0;
};

// Demangles a C++ symbol; returns the input when it is not a mangled name.
std::string Demangle(const char* symbol);

}  // namespace dw::report
