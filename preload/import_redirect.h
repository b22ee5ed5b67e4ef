// import_redirect.h: points one imported function of a library the shim loaded itself at a
// function of ours, by rewriting that library's GOT slot.
//
// The shim loads libunwind privately (RTLD_LOCAL); libunwind checks that memory is readable by
// writing it into a pipe of its own, which would sit in the program's descriptor table. Its
// pipe2, read and write imports are redirected so that the check needs no descriptor (see
// unwinder.cc). Only libraries the shim dlopen'ed are ever touched; the program's never.
//
// Thread-safety: call before the library is used by any other thread. Allocation: none.
// Safe inside a hook: no (start-up only).
#pragma once

namespace dw {

// Rewrites the GOT slot through which the library `handle` (from dlopen) calls `symbol`, so it
// calls `replacement` instead; `*original` receives what the slot held. False if the library
// has no such import (nothing is changed then).
bool RedirectImport(void* handle, const char* symbol, void* replacement, void** original);

}  // namespace dw
