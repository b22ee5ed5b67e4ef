// POSIX timers under the real shim: every symbol version is tracked, and forwarded to its own
// version (the compatibility ABI keeps working).
#include <gtest/gtest.h>

#include <string>

#include "report/run_command.h"

namespace dw::report {
namespace {

struct Totals {
  int64_t live = 0;
  uint64_t acquired = 0, released = 0;
};

Totals TimersAt(const ProcessReport& process, const std::string& function) {
  Totals totals;
  for (const SiteReport* site : FindSitesByFunction(process, function, wire::Kind::kTimers)) {
    totals.live += site->live;
    totals.acquired += site->counters.acquired;
    totals.released += site->counters.released;
  }
  return totals;
}

TEST(TimerCensusTest, EveryVersionTrackedAndForwardedToItsOwnVersion) {
  RunOptions options;
  options.command = {std::string(DW_PROGRAM_DIR) + "/e2e_timer_every_version"};
  options.interval_ms = 100;
  options.shim_path = DW_SHIM_PATH;
  options.forward_signals = false;
  absl::StatusOr<RunResult> result = RunUnderShim(options);
  ASSERT_TRUE(result.ok()) << result.status();
  // The program exits 1 if any call failed, e.g. a compat id deleted through the new ABI.
  ASSERT_FALSE(result->child_failed) << "exit code " << result->child_exit.code;
  ASSERT_EQ(result->processes.size(), 1u);
  const ProcessReport& process = result->processes[0];
  ASSERT_TRUE(process.saw_final);

  Totals current = TimersAt(process, "current_abi_leak");
  EXPECT_EQ(current.live, 2);
  Totals v233 = TimersAt(process, "version_2_3_3_leak");
  EXPECT_EQ(v233.live, 3);
  Totals compat = TimersAt(process, "compat_abi_leak");
  EXPECT_EQ(compat.live, 1);
  for (const char* balanced :
       {"current_abi_balanced", "version_2_3_3_balanced", "compat_abi_balanced"}) {
    Totals at = TimersAt(process, balanced);
    EXPECT_EQ(at.acquired, 50u) << balanced;
    EXPECT_EQ(at.released, 50u) << balanced;
    EXPECT_EQ(at.live, 0) << balanced;
  }
}

}  // namespace
}  // namespace dw::report
