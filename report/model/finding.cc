#include "report/model/finding.h"

namespace dw::report {

const char* DriftStatusName(DriftStatus status) {
  switch (status) {
    case DriftStatus::kSteady:
      return "steady";
    case DriftStatus::kWarming:
      return "warming";
    case DriftStatus::kDrifting:
      return "drifting";
    case DriftStatus::kInconclusive:
      return "inconclusive";
  }
  return "unknown";
}

}  // namespace dw::report
