// limits.h: the process limits that its resources run into, for the census's Limits record.
//
// Read on the census thread: getrlimit, /proc/sys/kernel/threads-max, the process's cgroup
// (v2 pids.max and memory.max, or v1 memory.limit_in_bytes) and MemTotal, so the collector can
// project when a drifting resource reaches its limit.
//
// Thread-safety: yes (reads only). Allocation: none. Safe inside a hook: no (it reads files).
#pragma once

#include "preload/wire_format.h"

namespace dw {

class RecordWriter;

// Reads every limit; fields that cannot be read stay 0.
wire::Limits ReadLimits();

// Appends a Limits record (a CensusSources record writer).
bool WriteLimits(RecordWriter& writer);

}  // namespace dw
