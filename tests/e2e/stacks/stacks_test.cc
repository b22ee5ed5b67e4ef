// The stacks of findings, end to end: what the user reads for a leak in a dlopen'd plugin (also
// once the plugin is unloaded), in a stripped binary, with its debug info in a separate file
// found by build-id, and in a binary that a deploy replaced on disk while it ran.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"

namespace dw::report {
namespace {

using e2e::LineOf;
using e2e::OnlyProcess;
using e2e::RunProgram;

// The heap site with exactly `live` live blocks, or null.
const SiteReport* HeapSiteWithLive(const ProcessReport& process, int64_t live) {
  for (const SiteReport& site : process.sites) {
    if (site.kind == wire::Kind::kHeap && site.live == live) return &site;
  }
  return nullptr;
}

const Frame& Headline(const SiteReport& site) { return site.frames.at(site.headline); }

std::string Program(const std::string& name) { return std::string(DW_PROGRAM_DIR) + "/" + name; }

// A path under gtest's temporary folder, spelled as the kernel will show it in /proc/self/maps.
std::string TempPath(const std::string& name) {
  return (std::filesystem::path(testing::TempDir()) / name).lexically_normal().string();
}

void Shell(const std::string& command) { ASSERT_EQ(std::system(command.c_str()), 0) << command; }

// The GNU build-id of an ELF file, as readelf prints it.
std::string BuildIdOf(const std::string& path) {
  const std::string out = TempPath("build_id.txt");
  Shell("readelf -n '" + path + "' | sed -n 's/.*Build ID: *//p' > '" + out + "'");
  std::ifstream in(out);
  std::string id;
  std::getline(in, id);
  return id;
}

// Puts the debug info of `binary` where a debug root keeps it: ROOT/.build-id/xx/yyyy.debug.
std::string MakeDebugRoot(const std::string& binary, const std::string& name) {
  const std::string root = TempPath(name);
  const std::string id = BuildIdOf(binary);
  EXPECT_GE(id.size(), 4u);
  const std::string dir = root + "/.build-id/" + id.substr(0, 2);
  std::filesystem::create_directories(dir);
  Shell("objcopy --only-keep-debug '" + binary + "' '" + dir + "/" + id.substr(2) + ".debug'");
  return root;
}

RunResult RunUnder(RunOptions options) {
  options.shim_path = DW_SHIM_PATH;
  options.forward_signals = false;
  if (options.interval_ms == 1000) options.interval_ms = 100;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return {};
  EXPECT_FALSE(result->child_failed) << options.command[0] << " failed";
  return *std::move(result);
}

void ExpectPluginLeakNamed(const ProcessReport& process) {
  const SiteReport* site = HeapSiteWithLive(process, 400);
  ASSERT_NE(site, nullptr) << "no heap site with the plugin's 400 sessions";
  const Frame& frame = Headline(*site);
  EXPECT_EQ(frame.function, "remember_session") << frame.Describe() << " " << frame.unresolved;
  EXPECT_TRUE(frame.file.ends_with("session_plugin.c")) << frame.file;
  EXPECT_EQ(frame.line, LineOf("session_plugin.c", "// PLUGIN LEAK LINE"));
  EXPECT_EQ(std::filesystem::path(frame.module).filename(), "libe2e_session_plugin.so");
  EXPECT_EQ(frame.build_id, BuildIdOf(DW_PLUGIN_PATH));
}

TEST(StacksTest, PluginLeakNamesThePluginsFunctionFileAndLine) {
  RunResult result = RunProgram("e2e_plugin_host", {DW_PLUGIN_PATH});
  const ProcessReport& process = OnlyProcess(result);
  ExpectPluginLeakNamed(process);
  EXPECT_FALSE(Headline(*HeapSiteWithLive(process, 400)).module_unloaded);
}

TEST(StacksTest, PluginUnloadedBeforeAnyCensusIsStillNamed) {
  // No census runs between the dlopen and the dlclose (the interval is longer than the whole
  // run): the final census defines the plugin's site when the plugin is no longer mapped.
  RunOptions options;
  options.command = {Program("e2e_plugin_host"), DW_PLUGIN_PATH, "unload"};
  options.interval_ms = 60000;
  RunResult result = RunUnder(options);
  const ProcessReport& process = OnlyProcess(result);
  ExpectPluginLeakNamed(process);
  const SiteReport* site = HeapSiteWithLive(process, 400);
  ASSERT_NE(site, nullptr);
  EXPECT_TRUE(Headline(*site).module_unloaded);
}

TEST(StacksTest, PluginsReloadedAtTheSameAddressesKeepTheirOwnNames) {
  // 600 rounds alternate two plugins that take the same addresses, across many censuses: each
  // leak must be named from the plugin that was mapped when its stack was captured.
  RunOptions options;
  options.command = {Program("e2e_reload_host"), DW_PLUGIN_PATH, DW_OTHER_PLUGIN_PATH, "600"};
  options.interval_ms = 50;
  const RunResult result = RunUnder(options);
  const ProcessReport& process = OnlyProcess(result);
  ASSERT_GE(process.census_count, 3u) << "the rounds should span several censuses";
  int64_t sessions = 0;
  int64_t counters = 0;
  for (const SiteReport& site : process.sites) {
    if (site.kind != wire::Kind::kHeap || site.live == 0 || site.frames.empty()) continue;
    const Frame& frame = Headline(site);
    if (frame.module.find("plugin") == std::string::npos) continue;
    if (frame.function == "remember_session") {
      EXPECT_TRUE(frame.module.ends_with("libe2e_session_plugin.so")) << frame.module;
      EXPECT_EQ(frame.line, LineOf("session_plugin.c", "// PLUGIN LEAK LINE"));
      sessions += site.live;
    } else if (frame.function == "add_counter") {
      EXPECT_TRUE(frame.module.ends_with("libe2e_counter_plugin.so")) << frame.module;
      EXPECT_EQ(frame.line, LineOf("counter_plugin.c", "// COUNTER LEAK LINE"));
      counters += site.live;
    } else {
      ADD_FAILURE() << "a plugin site named " << frame.Describe() << " (" << frame.unresolved
                    << ")";
    }
  }
  EXPECT_EQ(sessions, 300 * 50);
  EXPECT_EQ(counters, 300 * 20);
}

TEST(StacksTest, LibcFramesGetLinesFromItsDebugFileUnderUsrLibDebug) {
  // Debian's libc is stripped; libc6-dbg (scripts/setup) puts its DWARF in
  // /usr/lib/debug/.build-id/, found by the build-id the shim read from the loaded libc. It is
  // read for the stacks the outputs print (a finding's), so the program leaks.
  RunResult result = RunProgram("e2e_leak_per_request", {}, 2.0);
  const ProcessReport& process = OnlyProcess(result);
  const Frame* libc_frame = nullptr;
  for (const SiteReport& group : process.groups) {
    if (group.finding.status != DriftStatus::kDrifting) continue;
    for (const Frame& frame : group.frames) {
      if (frame.module.find("/libc.so.6") != std::string::npos && !frame.inlined &&
          frame.function.starts_with("__libc_start")) {
        libc_frame = &frame;
      }
    }
  }
  ASSERT_NE(libc_frame, nullptr) << "no stack reaches __libc_start_main";
  ASSERT_FALSE(libc_frame->build_id.empty());
  const std::string debug_file = "/usr/lib/debug/.build-id/" + libc_frame->build_id.substr(0, 2) +
                                 "/" + libc_frame->build_id.substr(2) + ".debug";
  ASSERT_TRUE(std::filesystem::exists(debug_file))
      << debug_file << " is missing: libc6-dbg is not installed (scripts/setup installs it)";
  EXPECT_FALSE(libc_frame->file.empty())
      << libc_frame->Describe() << ": " << libc_frame->unresolved;
  EXPECT_GT(libc_frame->line, 0);
  EXPECT_TRUE(libc_frame->unresolved.empty()) << libc_frame->unresolved;
}

// How far below the interposed function the user's frame is, in return addresses (frames the
// unwinder must capture), for every site of `kind` whose stack reaches `function`. -1 if none.
int DeepestUserFrame(const ProcessReport& process, const std::string& function, wire::Kind kind) {
  int deepest = -1;
  for (const SiteReport* site : FindSitesByFunction(process, function, kind)) {
    int physical = 0;
    for (size_t i = 0; i < site->frames.size(); ++i) {
      if (i > 0 && site->frames[i].address != site->frames[i - 1].address) ++physical;
      if (site->frames[i].function.starts_with(function)) break;
    }
    deepest = std::max(deepest, physical);
  }
  return deepest;
}

TEST(StacksTest, DefaultDepthReachesTheUsersFrameOnEveryDeepPath) {
  // Captured at the maximum depth, so the distance is measured rather than cut off; each path
  // the default depth must get through: operator new and the containers, stdio (fopen's FILE
  // and its fd, popen's pipe, fork and exec), and pthread_create (the thread and the memory
  // glibc allocates for it).
  ASSERT_EQ(setenv("DRIFTWATCH_DEPTH", "64", 1), 0);
  struct Path {
    const char* program;
    const char* function;
    wire::Kind kind;
  };
  const Path paths[] = {
      {"e2e_cxx_containers", "make_widgets", wire::Kind::kHeap},
      {"e2e_cxx_containers", "fill_map", wire::Kind::kHeap},
      {"e2e_cxx_containers", "grow_vector", wire::Kind::kHeap},
      {"e2e_every_fd_function", "make_fopen", wire::Kind::kFds},
      {"e2e_every_fd_function", "make_fopen", wire::Kind::kHeap},
      {"e2e_every_fd_function", "make_popen", wire::Kind::kFds},
      {"e2e_every_fd_function", "make_popen", wire::Kind::kHeap},
      {"e2e_threads_lifecycle", "create_joined", wire::Kind::kThreads},
      {"e2e_threads_lifecycle", "create_joined", wire::Kind::kHeap},
  };
  std::map<std::string, RunResult> runs;
  int deepest = 0;
  for (const Path& path : paths) {
    auto [run, inserted] = runs.try_emplace(path.program);
    if (inserted) run->second = RunProgram(path.program);
    // popen's child is a process of its own; the paths are the program's.
    const ProcessReport* program = nullptr;
    for (const ProcessReport& process : run->second.processes) {
      if (process.identity.pid == static_cast<uint32_t>(run->second.child_pid)) program = &process;
    }
    ASSERT_NE(program, nullptr) << path.program;
    const int depth = DeepestUserFrame(*program, path.function, path.kind);
    EXPECT_GE(depth, 0) << path.function << " has no site";
    EXPECT_LT(depth, 16) << path.function << ": beyond DRIFTWATCH_DEPTH's default of 16";
    std::printf("user frame of %s (%s) at capture depth %d\n", path.function, KindName(path.kind),
                depth + 1);
    deepest = std::max(deepest, depth + 1);
  }
  std::printf("deepest user frame: %d of the default 16\n", deepest);
  unsetenv("DRIFTWATCH_DEPTH");
}

// The stripped-binary tests work on copies in their own folder.
class StrippedBinaryTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempPath(std::string("stripped_") +
                    testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    binary_ = dir_ + "/stripped_leak";
    std::filesystem::copy_file(Program("e2e_stripped_leak"), binary_);
  }

  // Runs the copy and returns the headline frame of its heap site with `live` blocks: 300 for
  // exported_cache_fill, 200 for the static hidden_cache_fill.
  Frame Headline(int64_t live, std::vector<std::string> arguments = {},
                 std::vector<std::string> debug_dirs = {}) {
    RunOptions options;
    options.command = {binary_};
    options.command.insert(options.command.end(), arguments.begin(), arguments.end());
    options.debug_dirs = std::move(debug_dirs);
    const RunResult result = RunUnder(options);
    const SiteReport* site = HeapSiteWithLive(OnlyProcess(result), live);
    EXPECT_NE(site, nullptr) << "no heap site with " << live << " live blocks";
    return site != nullptr ? site->frames.at(site->headline) : Frame{};
  }

  // Copies another program beside the binary, for the binary to rename over itself.
  std::string Replacement() {
    const std::string replacement = dir_ + "/replacement";
    std::filesystem::copy_file(Program("e2e_plugin_host"), replacement);
    return replacement;
  }

  std::string dir_;
  std::string binary_;
};

TEST_F(StrippedBinaryTest, ExportedNamesRemainAndTheRestIsModulePlusOffset) {
  Shell("strip --strip-all '" + binary_ + "'");
  const Frame named = Headline(300);
  EXPECT_EQ(named.function, "exported_cache_fill");
  EXPECT_TRUE(named.file.empty());
  EXPECT_NE(named.unresolved.find("no debug info for " + binary_), std::string::npos)
      << named.unresolved;

  const Frame bare = Headline(200);
  EXPECT_TRUE(bare.function.empty()) << bare.function;
  EXPECT_EQ(bare.module, binary_);
  EXPECT_GT(bare.module_offset, 0u);
  EXPECT_NE(bare.unresolved.find("stripped"), std::string::npos) << bare.unresolved;
  char offset[32];
  std::snprintf(offset, sizeof(offset), "+0x%llx",
                static_cast<unsigned long long>(bare.module_offset));
  EXPECT_EQ(bare.Describe(), binary_ + offset);
}

TEST_F(StrippedBinaryTest, SeparateDebugFileIsFoundByBuildId) {
  const std::string root = MakeDebugRoot(binary_, "debug_root_stripped");
  Shell("strip --strip-all '" + binary_ + "'");
  const Frame frame = Headline(200, {}, {root});
  EXPECT_EQ(frame.function, "hidden_cache_fill") << frame.unresolved;
  EXPECT_TRUE(frame.file.ends_with("stripped_leak.c")) << frame.file;
  EXPECT_EQ(frame.line, LineOf("stripped_leak.c", "// HIDDEN LEAK LINE"));
}

TEST_F(StrippedBinaryTest, RelativeDebugDirIsTheCurrentFolders) {
  // `--debug-dir debug` means ./debug, not a folder beside each binary.
  const std::string root = MakeDebugRoot(binary_, "debug_root_relative");
  Shell("strip --strip-all '" + binary_ + "'");
  const std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::path(root).parent_path());
  const Frame frame = Headline(200, {}, {std::filesystem::path(root).filename().string()});
  std::filesystem::current_path(previous);
  EXPECT_EQ(frame.function, "hidden_cache_fill") << frame.unresolved;
  EXPECT_EQ(frame.line, LineOf("stripped_leak.c", "// HIDDEN LEAK LINE"));
}

TEST_F(StrippedBinaryTest, BinaryReplacedWhileRunningIsNotMisread) {
  // The program renames another binary over itself before it exits, as a deploy does. The file
  // now at its path has other code at the same offsets: naming frames from it would be wrong.
  const Frame frame = Headline(200, {Replacement(), binary_});
  EXPECT_TRUE(frame.function.empty()) << "named from the replaced file: " << frame.function;
  EXPECT_EQ(frame.module, binary_);
  EXPECT_NE(frame.unresolved.find("has changed since it was loaded"), std::string::npos)
      << frame.unresolved;
}

TEST_F(StrippedBinaryTest, BinaryReplacedWhileRunningIsReadFromItsDebugFile) {
  const std::string root = MakeDebugRoot(binary_, "debug_root_replaced");
  const Frame frame = Headline(200, {Replacement(), binary_}, {root});
  EXPECT_EQ(frame.function, "hidden_cache_fill") << frame.unresolved;
  EXPECT_EQ(frame.line, LineOf("stripped_leak.c", "// HIDDEN LEAK LINE"));
}

}  // namespace
}  // namespace dw::report
