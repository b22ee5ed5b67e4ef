#include "report/model/run_result.h"

#include "absl/strings/str_cat.h"

namespace dw::report {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kSteady:
      return "steady";
    case Verdict::kDrift:
      return "drift";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "inconclusive";
}

const SiteReport* ProcessReport::FindSite(wire::Kind kind, uint32_t site_id) const {
  for (const SiteReport& site : sites) {
    if (site.kind == kind && site.site_id == site_id) return &site;
  }
  return nullptr;
}

std::vector<const SiteReport*> FindSitesByFunction(const ProcessReport& process,
                                                   std::string_view function,
                                                   std::optional<wire::Kind> kind) {
  std::vector<const SiteReport*> found;
  for (const SiteReport& site : process.sites) {
    if (kind.has_value() && site.kind != *kind) continue;
    for (const Frame& frame : site.frames) {
      if (frame.function == function ||
          (frame.function.starts_with(function) && frame.function.size() > function.size() &&
           frame.function[function.size()] == '(')) {
        found.push_back(&site);
        break;
      }
    }
  }
  return found;
}

std::vector<const ProcessReport*> FindProcessesByExe(const RunResult& result,
                                                     std::string_view exe) {
  std::vector<const ProcessReport*> found;
  for (const ProcessReport& process : result.processes) {
    if (process.identity.exe == exe ||
        process.identity.exe.ends_with(absl::StrCat("/", std::string(exe)))) {
      found.push_back(&process);
    }
  }
  return found;
}

}  // namespace dw::report
