// Tests of Symbolizer and ComputeLoadBias against this very test binary (a PIE built with -g)
// and the shared libraries it has loaded, using /proc/self/maps as the census ModuleList.
#include "report/symbols/symbolizer.h"

#include <dlfcn.h>
#include <elf.h>
#include <gelf.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "report/symbols/symbol_table.h"

namespace dw::report {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The census ModuleList the shim would send: every file-backed mapping, in address order.
ModuleList ReadSelfMaps() {
  ModuleList modules;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    if (path.empty() || path[0] != '/') continue;
    ModuleMapping m;
    const size_t dash = range.find('-');
    m.start = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    m.file_offset = std::stoull(offset, nullptr, 16);
    m.flags = (perms[0] == 'r' ? wire::kModuleRead : 0) |
              (perms[1] == 'w' ? wire::kModuleWrite : 0) |
              (perms[2] == 'x' ? wire::kModuleExec : 0);
    m.path = path;
    modules.push_back(m);
  }
  return modules;
}

// Load bias per object as the dynamic loader knows it: the ground truth for ComputeLoadBias.
absl::flat_hash_map<std::string, uint64_t> LoaderBiases() {
  absl::flat_hash_map<std::string, uint64_t> biases;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto& out = *static_cast<absl::flat_hash_map<std::string, uint64_t>*>(data);
        std::string name = info->dlpi_name;
        if (name.empty()) {
          char exe[4096];
          const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
          if (n > 0) name.assign(exe, n);
        }
        char resolved[4096];
        if (realpath(name.c_str(), resolved) != nullptr) out[resolved] = info->dlpi_addr;
        return 0;
      },
      &biases);
  return biases;
}

volatile uint64_t g_sink;

__attribute__((noinline)) uint64_t ReturnAddressHere() {
  return reinterpret_cast<uint64_t>(__builtin_return_address(0));
}

int g_call_line = 0;

}  // namespace
}  // namespace dw::report

// extern "C" so that the expected name is exact, and outside the anonymous namespace.
extern "C" __attribute__((noinline)) uint64_t driftwatch_symbolizer_test_caller() {
  dw::report::g_call_line = __LINE__ + 1;
  const uint64_t address = dw::report::ReturnAddressHere();
  dw::report::g_sink = dw::report::g_sink + address;  // keeps the call from being a tail call
  return address;
}

// An always-inlined helper: its call to ReturnAddressHere sits inside the inlined body, so the
// return address stands for two source-level frames.
int g_inlined_call_line = 0;
int g_outer_call_line = 0;
static inline __attribute__((always_inline)) uint64_t driftwatch_inlined_helper() {
  g_inlined_call_line = __LINE__ + 1;
  const uint64_t address = dw::report::ReturnAddressHere();
  dw::report::g_sink = dw::report::g_sink + address;
  return address;
}
extern "C" __attribute__((noinline)) uint64_t driftwatch_inlining_caller() {
  g_outer_call_line = __LINE__ + 1;
  const uint64_t address = driftwatch_inlined_helper();
  dw::report::g_sink = dw::report::g_sink + 1;
  return address;
}

namespace dw_test_namespace {
__attribute__((noinline)) uint64_t MangledCaller(int x) {
  const uint64_t address = dw::report::ReturnAddressHere();
  dw::report::g_sink = dw::report::g_sink + address + x;
  return address;
}
}  // namespace dw_test_namespace

namespace dw::report {
namespace {

TEST(SymbolizerTest, LoadBiasMatchesTheDynamicLoader) {
  const ModuleList modules = ReadSelfMaps();
  const auto truth = LoaderBiases();
  size_t checked = 0;
  for (const auto& [path, bias] : truth) {
    bool mapped = false;
    for (const ModuleMapping& m : modules) mapped |= m.path == path;
    if (!mapped) continue;
    SCOPED_TRACE(path);
    absl::StatusOr<uint64_t> computed = ComputeLoadBias(modules, path);
    ASSERT_TRUE(computed.ok()) << computed.status();
    EXPECT_EQ(*computed, bias);
    ++checked;
  }
  // The test binary (PIE), libc, libstdc++, libm, ld-linux at least.
  EXPECT_GE(checked, 4u);
}

TEST(SymbolizerTest, ResolvesFunctionFileAndLineInThisBinary) {
  const uint64_t return_address = driftwatch_symbolizer_test_caller();
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  const Frame frame = symbolizer.SymbolizeReturnAddress(return_address, &modules);
  EXPECT_EQ(frame.function, "driftwatch_symbolizer_test_caller") << frame.unresolved;
  EXPECT_THAT(frame.file, EndsWith("symbolizer_test.cc"));
  EXPECT_EQ(frame.line, g_call_line);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(frame.module, std::string(exe, n));
  EXPECT_EQ(frame.address, return_address);
  EXPECT_THAT(frame.AddressHex(), StartsWith("0x"));
  EXPECT_TRUE(frame.unresolved.empty());
}

// A process in a container maps files of its own filesystem: missing at that path here, they are
// found under a root such as /proc/PID/root.
TEST(SymbolizerTest, FilesMissingHereAreFoundUnderTheProcessRoot) {
  const uint64_t return_address = driftwatch_symbolizer_test_caller();
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  const std::string own_path(exe, n);
  const std::string container_path = "/driftwatch-test-container" + own_path;
  ModuleList modules = ReadSelfMaps();
  for (ModuleMapping& mapping : modules) {
    if (mapping.path == own_path) mapping.path = container_path;
  }
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / absl::StrCat("dw-root-", getpid());
  std::filesystem::create_directories(root / container_path.substr(1, container_path.rfind('/')));
  std::filesystem::copy_file(own_path, root / container_path.substr(1));

  Symbolizer here;
  EXPECT_EQ(here.SymbolizeReturnAddress(return_address, &modules).function, "");
  Symbolizer under_root(SymbolizerOptions{.roots = {"/nonexistent", root.string()}});
  const Frame frame = under_root.SymbolizeReturnAddress(return_address, &modules);
  EXPECT_EQ(frame.function, "driftwatch_symbolizer_test_caller") << frame.unresolved;
  EXPECT_EQ(frame.line, g_call_line);
  EXPECT_EQ(frame.module, container_path) << "frames name the path the process knows";
  std::filesystem::remove_all(root);
}

TEST(SymbolizerTest, DemanglesCppNames) {
  const uint64_t return_address = dw_test_namespace::MangledCaller(3);
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  const std::vector<Frame> frames =
      symbolizer.Symbolize(std::vector<uint64_t>{return_address}, &modules);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "dw_test_namespace::MangledCaller(int)");
  // Cached second lookup gives the same answer.
  EXPECT_EQ(symbolizer.SymbolizeReturnAddress(return_address, &modules).function,
            frames[0].function);
}

TEST(SymbolizerTest, ExpandsInlinedFunctionsWithTheirLines) {
  const uint64_t return_address = driftwatch_inlining_caller();
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  const std::vector<Frame> frames =
      symbolizer.Symbolize(std::vector<uint64_t>{return_address}, &modules);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "driftwatch_inlined_helper");
  EXPECT_TRUE(frames[0].inlined);
  EXPECT_EQ(frames[0].line, g_inlined_call_line);
  EXPECT_THAT(frames[0].file, EndsWith("symbolizer_test.cc"));
  EXPECT_EQ(frames[1].function, "driftwatch_inlining_caller");
  EXPECT_FALSE(frames[1].inlined);
  EXPECT_EQ(frames[1].line, g_outer_call_line);
  EXPECT_EQ(frames[0].address, frames[1].address);
  EXPECT_THAT(frames[0].Describe(), EndsWith("[inlined]"));
}

TEST(SymbolizerTest, ResolvesInASharedLibrary) {
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  // An address inside libc's getpid, given as a "return address" one past its first byte.
  const uint64_t address = reinterpret_cast<uint64_t>(&getpid) + 1;
  const Frame frame = symbolizer.SymbolizeReturnAddress(address, &modules);
  EXPECT_THAT(frame.module, HasSubstr("libc.so"));
  EXPECT_THAT(frame.function, HasSubstr("getpid")) << frame.unresolved;
}

// Choosing a headline frame and grouping by it need only the runtime's function names, which the
// ELF symbol tables give: libc's DWARF (Debian's libc6-dbg, a compressed debug file that takes
// 20-40 ms to inflate) is read only once a libc frame is wanted in full.
TEST(SymbolizerTest, RuntimeFramesByNameReadNoDwarf) {
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  const uint64_t in_libc = reinterpret_cast<uint64_t>(&getpid) + 1;
  const std::vector<Frame> named =
      symbolizer.SymbolizeWithInlines(in_libc, &modules, 0, FrameDetail::kRuntimeNamesOnly);
  ASSERT_EQ(named.size(), 1u);
  EXPECT_THAT(named[0].module, HasSubstr("libc.so"));
  EXPECT_THAT(named[0].function, HasSubstr("getpid")) << named[0].unresolved;
  EXPECT_TRUE(named[0].names_only);
  EXPECT_EQ(symbolizer.dwarf_loads(), 0u);

  // The same lookup of a frame outside the runtime is in full: the headline's line groups sites.
  const uint64_t own = driftwatch_symbolizer_test_caller();
  const std::vector<Frame> mine =
      symbolizer.SymbolizeWithInlines(own, &modules, 0, FrameDetail::kRuntimeNamesOnly);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_FALSE(mine[0].names_only);
  EXPECT_EQ(mine[0].line, g_call_line);
  EXPECT_EQ(symbolizer.dwarf_loads(), 1u);

  // Wanted in full, the libc frame reads libc's DWARF, and keeps the name it had.
  const Frame full = symbolizer.SymbolizeReturnAddress(in_libc, &modules);
  EXPECT_FALSE(full.names_only);
  EXPECT_EQ(full.function, named[0].function);
  EXPECT_EQ(symbolizer.dwarf_loads(), 2u);
}

TEST(SymbolizerTest, UnresolvedFramesSayWhy) {
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  const Frame nowhere = symbolizer.SymbolizeReturnAddress(0x10, &modules);
  EXPECT_TRUE(nowhere.function.empty());
  EXPECT_THAT(nowhere.unresolved, HasSubstr("no mapped file"));
  EXPECT_EQ(nowhere.Describe(), "0x10");

  ModuleList missing = {{.start = 0x400000,
                         .end = 0x500000,
                         .file_offset = 0,
                         .flags = 5,
                         .path = "/nonexistent/libgone.so",
                         .build_id = {},
                         .deleted = false}};
  const Frame gone = symbolizer.SymbolizeReturnAddress(0x400123, &missing);
  EXPECT_TRUE(gone.function.empty());
  EXPECT_EQ(gone.module, "/nonexistent/libgone.so");
  EXPECT_THAT(gone.unresolved, HasSubstr("cannot open"));
  EXPECT_EQ(gone.Describe(), "/nonexistent/libgone.so+0x123");

  const Frame no_list = symbolizer.SymbolizeReturnAddress(0x1234, nullptr);
  EXPECT_THAT(no_list.unresolved, HasSubstr("no module list"));
}

// This binary's mappings, as if an earlier image (`old_path`) had been unloaded from the same
// addresses by unload number `unload` before it was loaded there.
ModuleList WithUnloadedPredecessor(const std::string& old_path, uint16_t unload) {
  ModuleList modules = ReadSelfMaps();
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  const std::string self(exe, n > 0 ? n : 0);
  const size_t live = modules.size();
  for (size_t i = 0; i < live; ++i) {
    if (modules[i].path != self) continue;
    ModuleMapping old = modules[i];
    old.path = old_path;
    old.flags |= wire::kModuleUnloaded | (uint32_t{unload} << wire::kModuleUnloadShift);
    modules.push_back(old);
  }
  return modules;
}

TEST(SymbolizerTest, AddressesResolveInTheModuleMappedWhenTheStackWasCaptured) {
  const uint64_t return_address = driftwatch_symbolizer_test_caller();
  ModuleList modules = WithUnloadedPredecessor("/nonexistent/old_plugin.so", 3);
  Symbolizer symbolizer;
  // Captured before unload 3: the address was the old image's.
  const Frame before = symbolizer.SymbolizeReturnAddress(return_address, &modules, 2);
  EXPECT_EQ(before.module, "/nonexistent/old_plugin.so");
  EXPECT_TRUE(before.module_unloaded);
  EXPECT_TRUE(before.function.empty());
  // Captured once unload 3 had begun: this binary, mapped there now.
  const Frame after = symbolizer.SymbolizeReturnAddress(return_address, &modules, 3);
  EXPECT_EQ(after.function, "driftwatch_symbolizer_test_caller") << after.unresolved;
  EXPECT_FALSE(after.module_unloaded);
  // Unload numbers wrap at 2^16: a stack from generation 65535 precedes unload 3 (65539).
  EXPECT_EQ(symbolizer.SymbolizeReturnAddress(return_address, &modules, 65535).module,
            "/nonexistent/old_plugin.so");
}

TEST(SymbolizerTest, AStackOlderThanTheUnloadHistoryIsNotGuessed) {
  const uint64_t return_address = driftwatch_symbolizer_test_caller();
  ModuleList modules = WithUnloadedPredecessor("/nonexistent/old_plugin.so", 8);
  modules.has_unload_history = true;
  modules.unload_history_start = 6;  // unloads 3 to 5 were pruned
  modules.unload_generation = 9;
  Symbolizer symbolizer;
  const Frame old = symbolizer.SymbolizeReturnAddress(return_address, &modules, 2);
  EXPECT_TRUE(old.function.empty()) << old.function;
  EXPECT_NE(old.unresolved.find("is unknown"), std::string::npos) << old.unresolved;
  // A stack captured within the history resolves as usual.
  const Frame recent = symbolizer.SymbolizeReturnAddress(return_address, &modules, 8);
  EXPECT_EQ(recent.function, "driftwatch_symbolizer_test_caller") << recent.unresolved;
}

TEST(SymbolizerTest, RefusesToOpenAnythingButARegularFile) {
  // A stream naming a FIFO must not block the collector (opening one waits for a writer).
  const std::string fifo = testing::TempDir() + "/symbolizer_fifo";
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ModuleList modules = {{.start = 0x400000,
                         .end = 0x500000,
                         .file_offset = 0,
                         .flags = wire::kModuleRead | wire::kModuleExec,
                         .path = fifo,
                         .build_id = {},
                         .deleted = false}};
  Symbolizer symbolizer;
  const Frame frame = symbolizer.SymbolizeReturnAddress(0x400123, &modules);
  EXPECT_TRUE(frame.function.empty());
  EXPECT_NE(frame.unresolved.find("not a regular file"), std::string::npos) << frame.unresolved;
  unlink(fifo.c_str());
}

TEST(SymbolizerTest, ShortNamesDropTheParameterListOnly) {
  EXPECT_EQ(ShortFunctionName("demo::(anonymous namespace)::SessionRegistry::Remember(unsigned "
                              "long, demo::(anonymous namespace)::Request const&, long)"),
            "demo::(anonymous namespace)::SessionRegistry::Remember");
  EXPECT_EQ(ShortFunctionName("std::vector<int, std::allocator<int> >::push_back(int const&)"),
            "std::vector<int, std::allocator<int> >::push_back");
  EXPECT_EQ(ShortFunctionName("Handler::operator()(int) const"), "Handler::operator()");
  EXPECT_EQ(ShortFunctionName("operator new(unsigned long)"), "operator new");
  EXPECT_EQ(ShortFunctionName("Run(void (*)(int), int) &&"), "Run");
  EXPECT_EQ(ShortFunctionName("main"), "main");
  EXPECT_EQ(ShortFunctionName("fill_map()"), "fill_map");
  EXPECT_EQ(ShortFunctionName("(anonymous namespace)::Work(int)"), "(anonymous namespace)::Work");
  EXPECT_EQ(ShortFunctionName("odd)"), "odd)");  // unbalanced: left alone
}

TEST(SymbolizerTest, DemangleDropsCompilerCloneSuffixes) {
  EXPECT_EQ(Demangle("probe_backend.isra.0"), "probe_backend");
  EXPECT_EQ(Demangle("parse.constprop.0.isra.0"), "parse");
  EXPECT_EQ(Demangle("handle.cold"), "handle");
  EXPECT_EQ(Demangle("_ZN4demo7Service6HandleEv.part.0"), "demo::Service::Handle()");
  EXPECT_EQ(Demangle("_ZL5probev.isra.0"), "probe()");
}

TEST(SymbolizerTest, DemangleLeavesPlainNamesAlone) {
  EXPECT_EQ(Demangle("malloc"), "malloc");
  EXPECT_EQ(Demangle("_Znwm"), "operator new(unsigned long)");
}

}  // namespace
}  // namespace dw::report

// Symbols that exercise dwfl_module_addrinfo's rules, in this binary's .text: aliases of three
// bindings and sizes at one address, a sizeless label inside a sized symbol and others in gaps,
// nested locals, a data object, weak symbols inside global ones (which one wins depends on their
// order in the symbol table), an absolute symbol and a label after the last sized symbol.
asm(R"(
  .text
  .p2align 6
  .globl dw_rules_start
  .type dw_rules_start, @function
  .weak dw_rules_weak
  .type dw_rules_weak, @function
  .type dw_rules_local, @function
dw_rules_start:
dw_rules_weak:
dw_rules_local:
  .fill 8, 1, 0x90
dw_rules_inner_label:
  .fill 40, 1, 0x90
  .globl dw_rules_gap_label
dw_rules_gap_label:
  .fill 16, 1, 0x90
  .size dw_rules_start, 32
  .size dw_rules_weak, 48
  .size dw_rules_local, 16
  .type dw_rules_outer, @function
dw_rules_outer:
  .fill 4, 1, 0x90
  .type dw_rules_nested, @function
dw_rules_nested:
  .fill 4, 1, 0x90
  .size dw_rules_nested, 4
  .fill 8, 1, 0x90
  .size dw_rules_outer, 16
  .fill 8, 1, 0x90
dw_rules_local_label:
  .fill 8, 1, 0x90
  .globl dw_rules_object
  .type dw_rules_object, @object
dw_rules_object:
  .fill 16, 1, 0x90
  .size dw_rules_object, 8
  .globl dw_rules_pair
  .type dw_rules_pair, @function
  .weak dw_rules_pair_weak
  .type dw_rules_pair_weak, @function
  .type dw_rules_pair_local, @function
dw_rules_pair:
dw_rules_pair_weak:
dw_rules_pair_local:
  .fill 16, 1, 0x90
  .size dw_rules_pair, 16
  .size dw_rules_pair_weak, 16
  .size dw_rules_pair_local, 8
  .globl dw_rules_wrap_a
  .type dw_rules_wrap_a, @function
dw_rules_wrap_a:
  .fill 8, 1, 0x90
  .weak dw_rules_wrap_a_inner
  .type dw_rules_wrap_a_inner, @function
dw_rules_wrap_a_inner:
  .fill 24, 1, 0x90
  .size dw_rules_wrap_a_inner, 8
  .size dw_rules_wrap_a, 32
  .weak dw_rules_wrap_b_inner
  .type dw_rules_wrap_b_inner, @function
  .globl dw_rules_wrap_b
  .type dw_rules_wrap_b, @function
dw_rules_wrap_b:
  .fill 8, 1, 0x90
dw_rules_wrap_b_inner:
  .fill 24, 1, 0x90
  .size dw_rules_wrap_b_inner, 8
  .size dw_rules_wrap_b, 32
  .globl dw_rules_end_label
dw_rules_end_label:
  .fill 16, 1, 0x90
  .globl dw_rules_absolute
  .set dw_rules_absolute, 0x40
)");

namespace dw::report {
namespace {

// An image opened the way the Symbolizer opens it: offline at bias 0, debug files looked up.
class OfflineModule {
 public:
  explicit OfflineModule(const std::string& path) {
    dwfl_ = dwfl_begin(&callbacks_);
    dwfl_report_begin(dwfl_);
    module_ = dwfl_report_elf(dwfl_, path.c_str(), path.c_str(), -1, 0, true);
    dwfl_report_end(dwfl_, nullptr, nullptr);
  }
  ~OfflineModule() { dwfl_end(dwfl_); }
  Dwfl_Module* module() const { return module_; }

  // The module address of the symbol called `name`, if any.
  std::optional<uint64_t> Address(std::string_view name) const {
    const int count = dwfl_module_getsymtab(module_);
    for (int i = 1; i < count; ++i) {
      GElf_Sym sym;
      GElf_Addr value = 0;
      const char* found =
          dwfl_module_getsym_info(module_, i, &sym, &value, nullptr, nullptr, nullptr);
      if (found != nullptr && name == found) return value;
    }
    return std::nullopt;
  }

  // Addresses around every `stride`th symbol: its start, end and middle and their neighbours.
  std::vector<uint64_t> AddressesAroundSymbols(int stride) const {
    std::vector<uint64_t> addresses;
    const int count = dwfl_module_getsymtab(module_);
    for (int i = 1; i < count; i += stride) {
      GElf_Sym sym;
      GElf_Addr value = 0;
      if (dwfl_module_getsym_info(module_, i, &sym, &value, nullptr, nullptr, nullptr) == nullptr) {
        continue;
      }
      for (uint64_t address :
           {value - 1, value, value + 1, value + sym.st_size / 2, value + sym.st_size - 1,
            value + sym.st_size, value + sym.st_size + 1}) {
        addresses.push_back(address);
      }
    }
    return addresses;
  }

 private:
  char* debuginfo_path_ = nullptr;
  Dwfl_Callbacks callbacks_{.find_elf = dwfl_build_id_find_elf,
                            .find_debuginfo = dwfl_standard_find_debuginfo,
                            .section_address = dwfl_offline_section_address,
                            .debuginfo_path = &debuginfo_path_};
  Dwfl* dwfl_ = nullptr;
  Dwfl_Module* module_ = nullptr;
};

// The names dwfl_module_addrinfo and SymbolTable give for `addresses` that differ.
std::vector<std::string> Differences(const OfflineModule& image,
                                     const std::vector<uint64_t>& addresses) {
  SymbolTable table(image.module());
  EXPECT_TRUE(table.ok());
  std::vector<std::string> differences;
  for (uint64_t address : addresses) {
    GElf_Off offset = 0;
    GElf_Sym sym;
    const char* expected =
        dwfl_module_addrinfo(image.module(), address, &offset, &sym, nullptr, nullptr, nullptr);
    const char* got = table.Name(address);
    const std::string want = expected != nullptr ? expected : "(none)";
    const std::string have = got != nullptr ? got : "(none)";
    if (want != have) {
      differences.push_back(
          absl::StrCat(absl::Hex(address), ": addrinfo ", want, ", table ", have));
    }
  }
  EXPECT_EQ(table.addrinfo_calls(), 0u);
  return differences;
}

std::string LoadedPath(const void* address) {
  Dl_info info;
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

TEST(SymbolTableTest, ChoosesAsAddrinfoDoesAmongAliasesLabelsAndNestedSymbols) {
  OfflineModule self("/proc/self/exe");
  const std::optional<uint64_t> start = self.Address("dw_rules_start");
  ASSERT_TRUE(start.has_value());
  std::vector<uint64_t> addresses;
  for (uint64_t address = *start - 16; address < *start + 224; ++address) {
    addresses.push_back(address);
  }
  addresses.push_back(0x40);  // the absolute symbol
  EXPECT_THAT(Differences(self, addresses), ::testing::IsEmpty());
  // The rules matter here: the same address gets different names by binding, size and label.
  SymbolTable table(self.module());
  EXPECT_STREQ(table.Name(*start + 20), "dw_rules_start");        // global over weak and local
  EXPECT_STREQ(table.Name(*start + 40), "dw_rules_weak");         // the only one containing it
  EXPECT_STREQ(table.Name(*start + 52), "dw_rules_gap_label");    // sizeless global label
  EXPECT_STREQ(table.Name(*start + 69), "dw_rules_nested");       // innermost local
  EXPECT_STREQ(table.Name(*start + 90), "dw_rules_local_label");  // sizeless local in a gap
  // An object ends at 104, above that label: no symbol names 110 (the label would be a guess).
  EXPECT_EQ(table.Name(*start + 110), nullptr);
}

TEST(SymbolTableTest, NamesEqualAddrinfoInThisBinaryAndItsLibraries) {
  const std::vector<std::string> paths = {
      "/proc/self/exe", LoadedPath(reinterpret_cast<void*>(&getpid)),
      LoadedPath(reinterpret_cast<void*>(&std::__throw_bad_alloc))};
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    ASSERT_FALSE(path.empty());
    OfflineModule image(path);
    ASSERT_NE(image.module(), nullptr);
    const std::vector<uint64_t> addresses = image.AddressesAroundSymbols(8);
    EXPECT_GT(addresses.size(), 500u);
    EXPECT_THAT(Differences(image, addresses), ::testing::IsEmpty());
  }
}

// A big stripped program: only .dynsym, whose locals and globals are searched in two passes.
TEST(SymbolTableTest, NamesEqualAddrinfoInAStrippedProgram) {
  const std::string cc1plus = "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus";
  if (access(cc1plus.c_str(), R_OK) != 0) GTEST_SKIP() << "no " << cc1plus;
  OfflineModule image(cc1plus);
  ASSERT_NE(image.module(), nullptr);
  EXPECT_THAT(Differences(image, image.AddressesAroundSymbols(100)), ::testing::IsEmpty());
}

TEST(SymbolizerTest, NamesComeFromTheSortedTableNotAddrinfo) {
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  const auto libc_address = reinterpret_cast<uint64_t>(&getpid);
  const Frame frame = symbolizer.SymbolizeReturnAddress(libc_address + 1, &modules, 0,
                                                        FrameDetail::kRuntimeNamesOnly);
  EXPECT_THAT(frame.function, HasSubstr("getpid"));  // ASan intercepts printf, not getpid
  const Frame own =
      symbolizer.SymbolizeReturnAddress(reinterpret_cast<uint64_t>(&LoadedPath) + 1, &modules);
  EXPECT_THAT(own.function, HasSubstr("LoadedPath"));
  EXPECT_EQ(symbolizer.addrinfo_calls(), 0u);
}

// `driftwatch collect` shares one Symbolizer among every process it sees. A process's ModuleList
// is freed when it ends, and the next one may be allocated at the same address with other load
// addresses (ASLR): nothing cached may be keyed by where a ModuleList lives. Here one list is
// moved in place, as another process's would lie.
TEST(SymbolizerTest, AModuleListAtTheAddressOfAnEarlierOneGetsItsOwnLoadBias) {
  const uint64_t return_address = driftwatch_symbolizer_test_caller();
  ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer;
  const Frame before = symbolizer.SymbolizeReturnAddress(return_address, &modules);
  ASSERT_EQ(before.function, "driftwatch_symbolizer_test_caller") << before.unresolved;

  constexpr uint64_t kElsewhere = uint64_t{1} << 36;  // page-aligned, far from any mapping
  for (ModuleMapping& mapping : modules) {
    mapping.start += kElsewhere;
    mapping.end += kElsewhere;
  }
  const Frame after = symbolizer.SymbolizeReturnAddress(return_address + kElsewhere, &modules);
  EXPECT_EQ(after.function, "driftwatch_symbolizer_test_caller") << after.unresolved;
  EXPECT_EQ(after.line, g_call_line);
  EXPECT_EQ(after.module_offset, before.module_offset);
}

// A collector that runs for days sees programs come and go: past max_images, the image used
// least recently is closed with its caches, and a later frame in it is resolved again.
TEST(SymbolizerTest, ClosesTheLeastRecentlyUsedImagePastItsLimit) {
  const ModuleList modules = ReadSelfMaps();
  Symbolizer symbolizer({.debug_dirs = {}, .max_images = 2});
  const uint64_t own = driftwatch_symbolizer_test_caller();
  const uint64_t in_libc = reinterpret_cast<uint64_t>(&getpid) + 1;
  const uint64_t in_libstdcxx = reinterpret_cast<uint64_t>(&std::terminate) + 1;
  EXPECT_EQ(symbolizer.SymbolizeReturnAddress(own, &modules).function,
            "driftwatch_symbolizer_test_caller");
  EXPECT_THAT(symbolizer.SymbolizeReturnAddress(in_libc, &modules).function, HasSubstr("getpid"));
  EXPECT_EQ(symbolizer.open_images(), 2u);
  const Frame third = symbolizer.SymbolizeReturnAddress(in_libstdcxx, &modules);
  EXPECT_THAT(third.module, HasSubstr("libstdc++"));
  EXPECT_THAT(third.function, HasSubstr("terminate")) << third.unresolved;
  EXPECT_EQ(symbolizer.open_images(), 2u);
  // This binary was the least recently used: closed, then opened again for this frame.
  const Frame again = symbolizer.SymbolizeReturnAddress(own, &modules);
  EXPECT_EQ(again.function, "driftwatch_symbolizer_test_caller") << again.unresolved;
  EXPECT_EQ(again.line, g_call_line);
  EXPECT_EQ(symbolizer.open_images(), 2u);
  EXPECT_THAT(symbolizer.SymbolizeReturnAddress(in_libstdcxx, &modules).function,
              HasSubstr("terminate"));
}

}  // namespace
}  // namespace dw::report
