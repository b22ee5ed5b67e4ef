// hook_declarations.h: the libc headers that declare every function in hook_list.inc.
//
// The hook list derives each real function's type from libc's own declaration, so every header
// that declares one is included here, once.
// Thread-safety, allocation, hook safety: not applicable (declarations only).
#pragma once

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/mman.h>
// glibc 2.36's sys/pidfd.h lacks __BEGIN_DECLS (fixed in 2.37): without this, C++ would see
// pidfd_open and pidfd_getfd as C++ functions.
extern "C" {
#include <sys/pidfd.h>
}
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

// capset: glibc exports it, but only libcap's sys/capability.h declares it.
extern "C" int capset(cap_user_header_t header, const cap_user_data_t data) noexcept;

// glibc's _FORTIFY_SOURCE entry points of open and openat (GLIBC_2.7). Fortified programs call
// them instead of open/openat; glibc's headers declare them only in fortified builds.
extern "C" {
int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int directory, const char* path, int flags);
int __openat64_2(int directory, const char* path, int flags);
}
