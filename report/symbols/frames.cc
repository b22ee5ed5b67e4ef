#include "report/symbols/frames.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dw::report {
namespace {

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string Frame::AddressHex() const { return absl::StrFormat("0x%x", address); }

std::string ShortFunctionName(std::string_view name) {
  std::string_view rest = name;
  // Qualifiers after the parameter list of a member function.
  for (bool stripped = true; stripped;) {
    stripped = false;
    for (std::string_view qualifier : {" const", " volatile", " &&", " &", " noexcept"}) {
      if (rest.ends_with(qualifier)) {
        rest.remove_suffix(qualifier.size());
        stripped = true;
      }
    }
  }
  if (!rest.ends_with(')')) return std::string(name);
  // The parameter list is the last balanced (...): cut at its opening parenthesis, which keeps
  // "operator()" whole and skips parentheses inside the parameters (function pointers).
  int depth = 0;
  for (size_t i = rest.size(); i > 0; --i) {
    const char c = rest[i - 1];
    if (c == ')') ++depth;
    if (c == '(' && --depth == 0) {
      return i > 1 ? std::string(rest.substr(0, i - 1)) : std::string(name);
    }
  }
  return std::string(name);
}

std::string Frame::Describe() const {
  if (!function.empty()) {
    const char* inlined_note = inlined ? " [inlined]" : "";
    const std::string name = ShortFunctionName(function);
    if (!file.empty()) return absl::StrFormat("%s (%s:%d)%s", name, file, line, inlined_note);
    return absl::StrCat(name, inlined_note);
  }
  if (!module.empty()) return absl::StrFormat("%s+0x%x", module, module_offset);
  return AddressHex();
}

// libc and its old satellites, the C++ runtime, the loader, the shim, and the allocators a
// service may load (their operator new or aligned helpers can sit above the user's frame).
bool IsRuntimeFrame(const Frame& frame) {
  const std::string base = Basename(frame.module);
  for (const char* prefix :
       {"libc.so", "libstdc++.so", "libgcc_s", "ld-linux", "libdriftwatch.so", "libc-",
        "libpthread.so", "libpthread-", "librt.so", "librt-", "libdl.so", "libdl-",
        "libjemalloc.so", "libtcmalloc", "libmimalloc.so", "libsnmalloc", "libhoard"}) {
    if (base.starts_with(prefix)) return true;
  }
  return false;
}

namespace {

// Library code compiled into the user's binary: std templates, and anything inlined from a
// system header (inlined frames carry their plain DWARF name, e.g. "allocate", so the file
// says where they come from).
bool IsLibraryTemplate(const Frame& frame) {
  return frame.function.starts_with("std::") || frame.function.starts_with("__gnu_cxx::") ||
         frame.file.starts_with("/usr/include/");
}

}  // namespace

bool IsHeadlineCandidate(const Frame& frame) {
  return !IsRuntimeFrame(frame) && !IsLibraryTemplate(frame);
}

size_t HeadlineFrame(const std::vector<Frame>& frames) {
  std::optional<size_t> first_outside_runtime;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (IsRuntimeFrame(frames[i])) continue;
    if (!first_outside_runtime.has_value()) first_outside_runtime = i;
    if (!IsLibraryTemplate(frames[i])) return i;
  }
  return first_outside_runtime.value_or(0);
}

}  // namespace dw::report
