// export.h: marks the interposed definitions that libdriftwatch.so exports.
//
// The shim is built with -fvisibility=hidden; only what carries DW_EXPORT is visible to the
// dynamic linker, so no helper of ours can interpose or clash with a symbol of the target.
// Thread-safety, allocation, hook safety: not applicable (a macro).
#pragma once

#define DW_EXPORT extern "C" __attribute__((visibility("default")))
