// fake_census_client.cc: stands in for libdriftwatch.so in the run tests.
//
// Connects to $DRIFTWATCH_SOCKET and sends a real census stream every $DRIFTWATCH_INTERVAL_MS:
// site 1 (stack through LeakHere) grows by --leak-bytes per census, site 2 (ChurnHere) cycles
// alloc/free, site 3 (OnceHere) is allocated once. Stacks are genuine return addresses inside
// this binary with the module list of /proc/self/maps, so the collector symbolises them for real.
//
// Options: --censuses N (default 20), --leak-bytes B (default 1024), --exit-code C,
// --crash (abort after the censuses), --forever (send until SIGTERM, then a final census),
// --fork (a child process sends its own stream too), --expect-preload PATH (exit 7 unless
// LD_PRELOAD starts with PATH), --garbage (send a corrupt stream instead).
//
// Test code: single-threaded, allocates freely; it is not a hook.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/report/census_stream_builder.h"

namespace {

using dw::report::testing::Counter;
using dw::report::testing::StreamBuilder;
using dw::report::testing::TestModule;

volatile sig_atomic_t g_stop = 0;

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

// What an interposed allocator sees as its return address: a call site inside its caller.
__attribute__((noinline)) static uint64_t CallSite() {
  return reinterpret_cast<uint64_t>(__builtin_return_address(0));
}

// extern "C" and noinline so that their names are exact and their addresses real; the return
// addresses they give are inside themselves, like the frame 0 of a real site.
extern "C" __attribute__((noinline)) uint64_t LeakHere() { return CallSite(); }
extern "C" __attribute__((noinline)) uint64_t ChurnHere() { return CallSite(); }
extern "C" __attribute__((noinline)) uint64_t OnceHere() { return CallSite(); }

namespace {

std::vector<TestModule> ReadMaps() {
  std::vector<TestModule> modules;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    if (path.empty() || path[0] != '/') continue;
    const size_t dash = range.find('-');
    modules.push_back({.start = std::stoull(range.substr(0, dash), nullptr, 16),
                       .end = std::stoull(range.substr(dash + 1), nullptr, 16),
                       .file_offset = std::stoull(offset, nullptr, 16),
                       .flags = dw::wire::kModuleRead,
                       .path = path});
  }
  return modules;
}

bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

struct Options {
  int censuses = 20;
  uint64_t leak_bytes = 1024;
  int exit_code = 0;
  bool crash = false;
  bool forever = false;
  bool fork_child = false;
  bool garbage = false;
  std::string expect_preload;
};

// Sends the whole stream of one process. `leak_scale` lets the forked child differ.
int SendStream(const Options& options, uint64_t leak_scale) {
  const char* socket_path = std::getenv("DRIFTWATCH_SOCKET");
  const char* interval_text = std::getenv("DRIFTWATCH_INTERVAL_MS");
  if (socket_path == nullptr || interval_text == nullptr) return 8;
  const int interval_ms = std::atoi(interval_text);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path, sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return 9;
  if (options.garbage) {
    WriteAll(fd, "this is not a census stream at all");
    close(fd);
    return 0;
  }

  char exe[4096];
  const ssize_t exe_length = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  StreamBuilder b;
  b.Hello(getpid(), getppid(), std::string(exe, exe_length > 0 ? exe_length : 0), interval_ms);
  WriteAll(fd, b.Take());

  const uint64_t leak = LeakHere(), churn = ChurnHere(), once = OnceHere();
  uint64_t sequence = 0;
  for (int i = 0; options.forever || i < options.censuses; ++i) {
    const bool final = g_stop != 0 || (!options.forever && i + 1 == options.censuses);
    b.Begin(sequence, MonotonicNs(), (10 << 20) + i * 4096);
    if (sequence == 0) {
      const uint64_t caller = CallSite();  // a return address into this function, as frame 1
      b.Modules(ReadMaps())
          .Site(1, {leak, caller})
          .Site(2, {churn, caller})
          .Site(3, {once, caller});
    }
    const uint64_t n = static_cast<uint64_t>(i) + 1;
    b.Counters(dw::wire::Kind::kHeap,
               {Counter(1, n, 0, n * options.leak_bytes * leak_scale, 0),
                Counter(2, n * 10, n * 10 - (n % 5), n * 10 * 100, (n * 10 - (n % 5)) * 100),
                Counter(3, 1, 0, 4096, 0)});
    b.End(sequence, final ? dw::wire::kCensusFinal : 0);
    ++sequence;
    if (!WriteAll(fd, b.Take())) return 10;
    if (final) break;
    usleep(interval_ms * 1000);
  }
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (arg == "--censuses")
      options.censuses = std::atoi(next().c_str());
    else if (arg == "--leak-bytes")
      options.leak_bytes = std::strtoull(next().c_str(), nullptr, 10);
    else if (arg == "--exit-code")
      options.exit_code = std::atoi(next().c_str());
    else if (arg == "--crash")
      options.crash = true;
    else if (arg == "--forever")
      options.forever = true;
    else if (arg == "--fork")
      options.fork_child = true;
    else if (arg == "--garbage")
      options.garbage = true;
    else if (arg == "--expect-preload")
      options.expect_preload = next();
    else
      return 64;
  }
  if (!options.expect_preload.empty()) {
    const char* preload = std::getenv("LD_PRELOAD");
    if (preload == nullptr || std::string(preload).rfind(options.expect_preload, 0) != 0) return 7;
  }
  // Like the real shim: SIGTERM leads to a final census from the exit path.
  signal(SIGTERM, [](int) { g_stop = 1; });

  pid_t child = -1;
  if (options.fork_child) {
    child = fork();
    if (child == 0) _exit(SendStream(options, 2));
  }
  const int status = SendStream(options, 1);
  if (child > 0) waitpid(child, nullptr, 0);
  if (status != 0) return status;
  if (options.crash) abort();
  return options.exit_code;
}
