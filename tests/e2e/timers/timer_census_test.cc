// POSIX timers under the real shim: every symbol version is tracked, and forwarded to its own
// version (the compatibility ABI keeps working).
#include <gtest/gtest.h>

#include <string>

#include "tests/e2e/e2e_support.h"

namespace dw::report {
namespace {

using Totals = e2e::SiteTotals;

Totals TimersAt(const ProcessReport& process, const std::string& function) {
  return e2e::TotalsAt(process, function, wire::Kind::kTimers);
}

TEST(TimerCensusTest, EveryVersionTrackedAndForwardedToItsOwnVersion) {
  // The program exits 1 if any call failed, e.g. a compat id deleted through the new ABI.
  RunResult result = e2e::RunProgram("e2e_timer_every_version");
  ASSERT_FALSE(result.child_failed);
  const ProcessReport& process = e2e::OnlyProcess(result);

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
