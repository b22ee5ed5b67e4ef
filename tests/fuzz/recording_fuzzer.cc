// recording_fuzzer.cc: libFuzzer target for `driftwatch report FILE`: the recording reader
// (ReplayRecording), and through it the decoder, the analysis and both outputs, fed with any
// bytes. A recording is a file anyone may hand to driftwatch, and its census streams are what
// hostile processes sent, so nothing in it may crash the reader or make it allocate without
// bound (-malloc_limit_mb).
//
// ReplayRecording reads a path, so the input goes into a memfd, read as /proc/self/fd/N.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "report/commands/recording.h"
#include "report/commands/run_command.h"
#include "report/outputs/report_output.h"

namespace {

struct Scratch {
  int fd = -1;
  std::string path;
  std::FILE* sink = nullptr;  // the terminal report goes here
};

const Scratch& GetScratch() {
  static const Scratch scratch = [] {
    Scratch s;
    s.fd = memfd_create("recording_fuzzer", MFD_CLOEXEC);
    s.sink = std::fopen("/dev/null", "w");
    if (s.fd < 0 || s.sink == nullptr) {
      std::perror("recording_fuzzer: memfd_create or /dev/null");
      std::abort();
    }
    s.path = "/proc/self/fd/" + std::to_string(s.fd);
    return s;
  }();
  return scratch;
}

bool WriteAll(int fd, const uint8_t* data, size_t size) {
  if (ftruncate(fd, 0) != 0) return false;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Scratch& scratch = GetScratch();
  if (!WriteAll(scratch.fd, data, size)) {
    std::perror("recording_fuzzer: writing the memfd");
    std::abort();
  }
  absl::StatusOr<dw::report::ReplayedRun> replay =
      dw::report::ReplayRecording(scratch.path, dw::report::RunOptions{});
  if (!replay.ok()) return 0;
  (void)dw::report::RenderVerdictJson(replay->result);
  dw::report::PrintTerminalReport(replay->result, scratch.sink);
  return 0;
}
