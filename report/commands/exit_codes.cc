#include "report/commands/exit_codes.h"

namespace dw::report {

int ExitCodeFor(const RunResult& result) {
  if (result.child_failed) return kExitCommandFailed;
  switch (result.verdict) {
    case Verdict::kDrift:
      return kExitDrift;
    case Verdict::kInconclusive:
      return kExitInconclusive;
    case Verdict::kSteady:
      return kExitSteady;
  }
  return kExitInconclusive;
}

}  // namespace dw::report
