// frames.h: a symbolised stack frame, and which frame of a stack is the user's (the headline a
// site is named and grouped by).
//
// The headline skips the runtime (libc, the C++ runtime, the loader, the shim, allocators) and
// standard-library templates instantiated in the caller's module, so a site created by fopen()
// or pthread_create() is named by the user's function that called it.
//
// Thread-safety: stateless functions over the caller's data, safe from any thread. Allocation:
// yes (collector code). Never runs inside a hook.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dw::report {

struct Frame {
  uint64_t address = 0;          // the return address as sent by the shim
  std::string function;          // demangled; empty when unresolved
  std::string file;              // source file; empty without line information
  int line = 0;                  // 0 without line information
  std::string module;            // path of the mapped file; empty when no mapping contains address
  uint64_t module_offset = 0;    // address - load bias (an ELF virtual address), when module known
  std::string build_id;          // hex build-id of the loaded image, when the shim sent it
  bool module_unloaded = false;  // the module was unloaded by dlclose() before the census
  // Why the frame is incomplete: why `function` is empty, or, when only `file` is empty, why
  // there is no line information. Empty when fully resolved.
  std::string unresolved;
  // True when the compiler inlined this function into the next frame, which has the same
  // address: one return address can stand for several source-level calls.
  bool inlined = false;
  // Only the ELF symbol tables were read (FrameDetail::kRuntimeNamesOnly in symbolizer.h): no
  // file, line or inlined functions, even where the DWARF has them. Never printed as such.
  bool names_only = false;

  std::string AddressHex() const;
  // "function (file:line)", "function", or "module+0xoffset" as available, for people: the
  // function without its parameter list (ShortFunctionName); `function` keeps it all.
  std::string Describe() const;
};

// A demangled C++ name without its parameter list and the qualifiers after it, as a table
// shows it: "ns::Cache::Insert(std::string const&) const" is "ns::Cache::Insert". Namespaces
// and template arguments stay: they tell which code it is.
std::string ShortFunctionName(std::string_view name);

// True when the frame's module is libc (and its former parts libpthread, librt, libdl),
// libstdc++, libgcc_s, the dynamic loader or the shim.
bool IsRuntimeFrame(const Frame& frame);

// The index of the frame to name a site by: the first frame that is neither a runtime frame
// (IsRuntimeFrame) nor a standard-library template instantiated in the caller's module (e.g.
// std::thread::thread<...> around pthread_create, std::make_unique<...> around operator new).
// Falls back to the first non-runtime frame, then to 0. So a site created by fopen() or
// pthread_create() is named by the user's function that called it.
size_t HeadlineFrame(const std::vector<Frame>& frames);

// The headline is the first frame for which this holds (neither runtime nor library template):
// once one is seen, the frames after it cannot change it, so a stack can be symbolised up to it.
bool IsHeadlineCandidate(const Frame& frame);

}  // namespace dw::report
