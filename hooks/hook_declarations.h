// hook_declarations.h: the libc headers that declare every function in hook_list.inc.
//
// The hook list derives each real function's type from libc's own declaration, so every header
// that declares one is included here, once.
// Thread-safety, allocation, hook safety: not applicable (declarations only).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
