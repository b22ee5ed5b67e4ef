// fd_hooks.cc: every call that creates or releases a file descriptor (hooks/fd_hook_list.inc).
//
// Creating hooks call the real function, then guard and record the new descriptor with the
// caller's site; releasing hooks guard and release, then call the real function (the number
// could otherwise be handed to another thread while the table still holds it). Unlike the heap
// hooks, the real call runs outside the guard: several of these calls block (accept, recvmsg,
// open of a FIFO, pclose waiting for its child) and a signal handler that allocates meanwhile
// must still be recorded; and the stream functions allocate their FILE or DIR from the target's
// heap, which must stay attributed to the caller. glibc calls only internal aliases from inside
// these functions, so nothing is recorded twice (docs/PITFALLS.md, section 6).
//
// Arguments, results and errno are the real function's. Failures are never recorded. Before the
// real functions are resolved (only while the shim starts), the calls that have a system call
// of the same meaning are served by it, untracked; the others fail with ENOSYS.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hooks/export.h"
#include "hooks/real.h"
#include "preload/events.h"
#include "preload/os.h"
#include "preload/thread_state.h"
#include "preload/wire_format.h"

namespace {

namespace wire = dw::wire;

// True once `real` may be called; reads the pointer only after resolution.
template <typename Function>
bool Ready(Function& real) {
  return dw::real::EnsureResolved() && real != nullptr;
}

template <typename Result>
Result Unavailable(Result failure) {
  errno = ENOSYS;
  return failure;
}

int RawCall(long number, long a = 0, long b = 0, long c = 0, long d = 0) {
  return static_cast<int>(dw::os::RawCall(number, a, b, c, d));
}
int RawOpenAt(int directory, const char* path, int flags, mode_t mode) {
  return RawCall(SYS_openat, directory, reinterpret_cast<long>(path), flags, mode);
}

// Records a descriptor the real call created; `type_of()` is evaluated only when recording.
template <typename TypeOf>
int Created(int fd, TypeOf type_of) {
  if (fd < 0) return fd;
  dw::HookScope scope;
  if (scope.entered() && dw::Tracking()) dw::OnFdCreated(fd, type_of());
  return fd;
}
int CreatedOfType(int fd, uint32_t fd_type) {
  return Created(fd, [=] { return fd_type; });
}
// A descriptor opened from a path: a file, a directory, a device or a FIFO.
int Opened(int fd) {
  return Created(fd, [=] { return dw::ClassifyPathFd(fd); });
}
// The dup family: the copy is of the same kind as the original.
int Duplicated(int fd, int original) {
  return Created(fd, [=] { return dw::FdTypeOf(original); });
}

int PairCreated(int result, const int fds[2], uint32_t fd_type) {
  if (result != 0) return result;
  dw::HookScope scope;
  if (scope.entered() && dw::Tracking()) dw::OnFdPairCreated(fds, fd_type);
  return result;
}

// Before a release. Recorded even when re-entered, as free() is: no stale entry may outlive
// the descriptor.
void Closing(int fd) {
  dw::HookScope scope;
  if (dw::Tracking()) dw::OnFdClosing(fd);
}

// The descriptor under a stream, or -1 (memory and cookie streams have none). errno is kept:
// fileno sets it for streams without a descriptor.
int StreamFd(FILE* stream) {
  if (stream == nullptr) return -1;
  dw::os::ErrnoKeeper keep_errno;
  const int fd = fileno(stream);
  return fd;
}
int DirectoryFd(DIR* directory) {
  if (directory == nullptr) return -1;
  dw::os::ErrnoKeeper keep_errno;
  const int fd = dirfd(directory);
  return fd;
}

template <typename Stream, typename TypeOf>
Stream* StreamCreated(Stream* stream, int fd, TypeOf type_of) {
  if (stream != nullptr) Created(fd, type_of);
  return stream;
}
FILE* FileOpened(FILE* stream) {
  const int fd = StreamFd(stream);
  return StreamCreated(stream, fd, [=] { return dw::ClassifyPathFd(fd); });
}
FILE* StreamOfType(FILE* stream, uint32_t fd_type) {
  return StreamCreated(stream, StreamFd(stream), [=] { return fd_type; });
}

// fdopen, fdopendir: the stream now owns a descriptor that already exists.
template <typename Stream>
Stream* Adopted(Stream* stream, int fd) {
  if (stream == nullptr) return stream;
  dw::HookScope scope;
  if (scope.entered() && dw::Tracking()) dw::OnFdAdopted(fd);
  return stream;
}

}  // namespace

// Declares `mode_t mode`: the open family's optional third argument, which the caller passed
// only when the flags create a file (O_CREAT, O_TMPFILE), so it is read only then. A macro
// because va_start must run in the variadic hook itself.
#define DW_OPEN_MODE_ARGUMENT(flags)                    \
  mode_t mode = 0;                                      \
  if (__OPEN_NEEDS_MODE(flags)) {                       \
    va_list arguments;                                  \
    va_start(arguments, flags);                         \
    mode = static_cast<mode_t>(va_arg(arguments, int)); \
    va_end(arguments);                                  \
  }

// ---- Open family ----

DW_EXPORT int open(const char* path, int flags, ...) {
  DW_OPEN_MODE_ARGUMENT(flags)
  if (!Ready(dw::real::open)) return RawOpenAt(AT_FDCWD, path, flags, mode);
  return Opened(dw::real::open(path, flags, mode));
}

DW_EXPORT int open64(const char* path, int flags, ...) {
  DW_OPEN_MODE_ARGUMENT(flags)
  if (!Ready(dw::real::open64)) return RawOpenAt(AT_FDCWD, path, flags, mode);
  return Opened(dw::real::open64(path, flags, mode));
}

DW_EXPORT int openat(int directory, const char* path, int flags, ...) {
  DW_OPEN_MODE_ARGUMENT(flags)
  if (!Ready(dw::real::openat)) return RawOpenAt(directory, path, flags, mode);
  return Opened(dw::real::openat(directory, path, flags, mode));
}

DW_EXPORT int openat64(int directory, const char* path, int flags, ...) {
  DW_OPEN_MODE_ARGUMENT(flags)
  if (!Ready(dw::real::openat64)) return RawOpenAt(directory, path, flags, mode);
  return Opened(dw::real::openat64(directory, path, flags, mode));
}

DW_EXPORT int creat(const char* path, mode_t mode) {
  if (!Ready(dw::real::creat)) return RawOpenAt(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
  return Opened(dw::real::creat(path, mode));
}

DW_EXPORT int creat64(const char* path, mode_t mode) {
  if (!Ready(dw::real::creat64)) {
    return RawOpenAt(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
  }
  return Opened(dw::real::creat64(path, mode));
}

// The _FORTIFY_SOURCE entry points. Forwarded to their real selves, which abort on O_CREAT
// without a mode exactly as the program expects.
DW_EXPORT int __open_2(const char* path, int flags) {
  if (!Ready(dw::real::__open_2)) return RawOpenAt(AT_FDCWD, path, flags, 0);
  return Opened(dw::real::__open_2(path, flags));
}

DW_EXPORT int __open64_2(const char* path, int flags) {
  if (!Ready(dw::real::__open64_2)) return RawOpenAt(AT_FDCWD, path, flags, 0);
  return Opened(dw::real::__open64_2(path, flags));
}

DW_EXPORT int __openat_2(int directory, const char* path, int flags) {
  if (!Ready(dw::real::__openat_2)) return RawOpenAt(directory, path, flags, 0);
  return Opened(dw::real::__openat_2(directory, path, flags));
}

DW_EXPORT int __openat64_2(int directory, const char* path, int flags) {
  if (!Ready(dw::real::__openat64_2)) return RawOpenAt(directory, path, flags, 0);
  return Opened(dw::real::__openat64_2(directory, path, flags));
}

DW_EXPORT int open_by_handle_at(int mount, struct file_handle* handle, int flags) {
  if (!Ready(dw::real::open_by_handle_at)) return Unavailable(-1);
  return Opened(dw::real::open_by_handle_at(mount, handle, flags));
}

DW_EXPORT int mkstemp(char* name_template) {
  if (!Ready(dw::real::mkstemp)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkstemp(name_template), wire::kFdFile);
}

DW_EXPORT int mkstemp64(char* name_template) {
  if (!Ready(dw::real::mkstemp64)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkstemp64(name_template), wire::kFdFile);
}

DW_EXPORT int mkostemp(char* name_template, int flags) {
  if (!Ready(dw::real::mkostemp)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkostemp(name_template, flags), wire::kFdFile);
}

DW_EXPORT int mkostemp64(char* name_template, int flags) {
  if (!Ready(dw::real::mkostemp64)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkostemp64(name_template, flags), wire::kFdFile);
}

DW_EXPORT int mkstemps(char* name_template, int suffix_length) {
  if (!Ready(dw::real::mkstemps)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkstemps(name_template, suffix_length), wire::kFdFile);
}

DW_EXPORT int mkstemps64(char* name_template, int suffix_length) {
  if (!Ready(dw::real::mkstemps64)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkstemps64(name_template, suffix_length), wire::kFdFile);
}

DW_EXPORT int mkostemps(char* name_template, int suffix_length, int flags) {
  if (!Ready(dw::real::mkostemps)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkostemps(name_template, suffix_length, flags), wire::kFdFile);
}

DW_EXPORT int mkostemps64(char* name_template, int suffix_length, int flags) {
  if (!Ready(dw::real::mkostemps64)) return Unavailable(-1);
  return CreatedOfType(dw::real::mkostemps64(name_template, suffix_length, flags), wire::kFdFile);
}

DW_EXPORT int shm_open(const char* name, int flags, mode_t mode) {
  if (!Ready(dw::real::shm_open)) return Unavailable(-1);
  return CreatedOfType(dw::real::shm_open(name, flags, mode), wire::kFdFile);
}

DW_EXPORT int posix_openpt(int flags) {
  if (!Ready(dw::real::posix_openpt)) return Unavailable(-1);
  return CreatedOfType(dw::real::posix_openpt(flags), wire::kFdCharDevice);
}

DW_EXPORT int getpt() {
  if (!Ready(dw::real::getpt)) return Unavailable(-1);
  return CreatedOfType(dw::real::getpt(), wire::kFdCharDevice);
}

// ---- Sockets, pipes, received descriptors ----

DW_EXPORT int socket(int domain, int type, int protocol) noexcept {
  if (!Ready(dw::real::socket)) return RawCall(SYS_socket, domain, type, protocol);
  return CreatedOfType(dw::real::socket(domain, type, protocol), dw::SocketType(domain));
}

DW_EXPORT int socketpair(int domain, int type, int protocol, int fds[2]) noexcept {
  if (!Ready(dw::real::socketpair)) return Unavailable(-1);
  return PairCreated(dw::real::socketpair(domain, type, protocol, fds), fds,
                     dw::SocketType(domain));
}

// accept and accept4: the new socket is of the listening socket's family.
DW_EXPORT int accept(int fd, __SOCKADDR_ARG address, socklen_t* length) {
  if (!Ready(dw::real::accept)) return Unavailable(-1);
  return Duplicated(dw::real::accept(fd, address, length), fd);
}

DW_EXPORT int accept4(int fd, __SOCKADDR_ARG address, socklen_t* length, int flags) {
  if (!Ready(dw::real::accept4)) return Unavailable(-1);
  return Duplicated(dw::real::accept4(fd, address, length, flags), fd);
}

DW_EXPORT int pipe(int fds[2]) noexcept {
  if (!Ready(dw::real::pipe)) return RawCall(SYS_pipe2, reinterpret_cast<long>(fds), 0);
  return PairCreated(dw::real::pipe(fds), fds, wire::kFdPipe);
}

DW_EXPORT int pipe2(int fds[2], int flags) noexcept {
  if (!Ready(dw::real::pipe2)) return RawCall(SYS_pipe2, reinterpret_cast<long>(fds), flags);
  return PairCreated(dw::real::pipe2(fds, flags), fds, wire::kFdPipe);
}

// Descriptors passed with SCM_RIGHTS are new descriptors of this process.
DW_EXPORT ssize_t recvmsg(int fd, struct msghdr* message, int flags) {
  if (!Ready(dw::real::recvmsg)) return Unavailable(ssize_t{-1});
  const ssize_t received = dw::real::recvmsg(fd, message, flags);
  if (received >= 0) {
    dw::HookScope scope;
    if (scope.entered() && dw::Tracking()) dw::OnFdsReceived(message);
  }
  return received;
}

DW_EXPORT int recvmmsg(int fd, struct mmsghdr* messages, unsigned int count, int flags,
                       struct timespec* timeout) {
  if (!Ready(dw::real::recvmmsg)) return Unavailable(-1);
  const int received = dw::real::recvmmsg(fd, messages, count, flags, timeout);
  if (received > 0) {
    dw::HookScope scope;
    if (scope.entered() && dw::Tracking()) {
      for (int i = 0; i < received; ++i) dw::OnFdsReceived(&messages[i].msg_hdr);
    }
  }
  return received;
}

DW_EXPORT int pidfd_open(pid_t pid, unsigned int flags) noexcept {
  if (!Ready(dw::real::pidfd_open)) return Unavailable(-1);
  return CreatedOfType(dw::real::pidfd_open(pid, flags), wire::kFdPidfd);
}

// A copy of another process's descriptor: of any kind.
DW_EXPORT int pidfd_getfd(int pidfd, int target_fd, unsigned int flags) noexcept {
  if (!Ready(dw::real::pidfd_getfd)) return Unavailable(-1);
  const int fd = dw::real::pidfd_getfd(pidfd, target_fd, flags);
  return Created(fd, [=] { return dw::ClassifyFd(fd); });
}

// ---- Duplication ----
// dup2 and dup3 onto an open number close it first; recording the copy releases the stale
// entry (HandleTracker::Create), and the kernel swaps the number atomically, so no other
// thread can be handed it in between.

DW_EXPORT int dup(int fd) noexcept {
  if (!Ready(dw::real::dup)) return RawCall(SYS_dup, fd);
  return Duplicated(dw::real::dup(fd), fd);
}

DW_EXPORT int dup2(int fd, int target) noexcept {
  if (!Ready(dw::real::dup2)) return RawCall(SYS_dup2, fd, target);
  const int result = dw::real::dup2(fd, target);
  if (fd == target) return result;  // a no-op on a valid descriptor
  return Duplicated(result, fd);
}

DW_EXPORT int dup3(int fd, int target, int flags) noexcept {
  if (!Ready(dw::real::dup3)) return RawCall(SYS_dup3, fd, target, flags);
  return Duplicated(dw::real::dup3(fd, target, flags), fd);  // fd == target fails (EINVAL)
}

namespace {

bool DuplicatesFd(int command) { return command == F_DUPFD || command == F_DUPFD_CLOEXEC; }

}  // namespace

// The third argument is forwarded as one machine word for every command, as glibc's own fcntl
// reads it: an int, a pointer and nothing at all travel the same way on x86-64.
DW_EXPORT int fcntl(int fd, int command, ...) {
  va_list arguments;
  va_start(arguments, command);
  void* argument = va_arg(arguments, void*);
  va_end(arguments);
  if (!Ready(dw::real::fcntl)) {
    return RawCall(SYS_fcntl, fd, command, reinterpret_cast<long>(argument));
  }
  const int result = dw::real::fcntl(fd, command, argument);
  return DuplicatesFd(command) ? Duplicated(result, fd) : result;
}

DW_EXPORT int fcntl64(int fd, int command, ...) {
  va_list arguments;
  va_start(arguments, command);
  void* argument = va_arg(arguments, void*);
  va_end(arguments);
  if (!Ready(dw::real::fcntl64)) {
    return RawCall(SYS_fcntl, fd, command, reinterpret_cast<long>(argument));
  }
  const int result = dw::real::fcntl64(fd, command, argument);
  return DuplicatesFd(command) ? Duplicated(result, fd) : result;
}

// ---- Anonymous-inode descriptors ----

DW_EXPORT int epoll_create(int size) noexcept {
  if (!Ready(dw::real::epoll_create)) return Unavailable(-1);
  return CreatedOfType(dw::real::epoll_create(size), wire::kFdEpoll);
}

DW_EXPORT int epoll_create1(int flags) noexcept {
  if (!Ready(dw::real::epoll_create1)) return Unavailable(-1);
  return CreatedOfType(dw::real::epoll_create1(flags), wire::kFdEpoll);
}

DW_EXPORT int eventfd(unsigned int count, int flags) noexcept {
  if (!Ready(dw::real::eventfd)) return Unavailable(-1);
  return CreatedOfType(dw::real::eventfd(count, flags), wire::kFdEventfd);
}

// Only fd == -1 creates; otherwise the call changes the mask of an existing signalfd.
DW_EXPORT int signalfd(int fd, const sigset_t* mask, int flags) noexcept {
  if (!Ready(dw::real::signalfd)) return Unavailable(-1);
  const int result = dw::real::signalfd(fd, mask, flags);
  return fd == -1 ? CreatedOfType(result, wire::kFdSignalfd) : result;
}

DW_EXPORT int timerfd_create(clockid_t clock, int flags) noexcept {
  if (!Ready(dw::real::timerfd_create)) return Unavailable(-1);
  return CreatedOfType(dw::real::timerfd_create(clock, flags), wire::kFdTimerfd);
}

DW_EXPORT int inotify_init() noexcept {
  if (!Ready(dw::real::inotify_init)) return Unavailable(-1);
  return CreatedOfType(dw::real::inotify_init(), wire::kFdInotify);
}

DW_EXPORT int inotify_init1(int flags) noexcept {
  if (!Ready(dw::real::inotify_init1)) return Unavailable(-1);
  return CreatedOfType(dw::real::inotify_init1(flags), wire::kFdInotify);
}

DW_EXPORT int fanotify_init(unsigned int flags, unsigned int event_flags) noexcept {
  if (!Ready(dw::real::fanotify_init)) return Unavailable(-1);
  return CreatedOfType(dw::real::fanotify_init(flags, event_flags), wire::kFdFanotify);
}

DW_EXPORT int memfd_create(const char* name, unsigned int flags) noexcept {
  if (!Ready(dw::real::memfd_create)) return Unavailable(-1);
  return CreatedOfType(dw::real::memfd_create(name, flags), wire::kFdMemfd);
}

// ---- stdio and directory streams ----
// Their descriptors are opened and closed by libc internally, where the open and close hooks
// cannot see them, so the stream calls record them.

DW_EXPORT FILE* fopen(const char* path, const char* mode) {
  if (!Ready(dw::real::fopen)) return Unavailable<FILE*>(nullptr);
  return FileOpened(dw::real::fopen(path, mode));
}

DW_EXPORT FILE* fopen64(const char* path, const char* mode) {
  if (!Ready(dw::real::fopen64)) return Unavailable<FILE*>(nullptr);
  return FileOpened(dw::real::fopen64(path, mode));
}

DW_EXPORT FILE* fdopen(int fd, const char* mode) noexcept {
  if (!Ready(dw::real::fdopen)) return Unavailable<FILE*>(nullptr);
  return Adopted(dw::real::fdopen(fd, mode), fd);
}

// The old descriptor is closed whether or not reopening succeeds; the new one keeps its number
// in glibc, but is recorded from the result all the same.
DW_EXPORT FILE* freopen(const char* path, const char* mode, FILE* stream) {
  if (!Ready(dw::real::freopen)) return Unavailable<FILE*>(nullptr);
  Closing(StreamFd(stream));
  return FileOpened(dw::real::freopen(path, mode, stream));
}

DW_EXPORT FILE* freopen64(const char* path, const char* mode, FILE* stream) {
  if (!Ready(dw::real::freopen64)) return Unavailable<FILE*>(nullptr);
  Closing(StreamFd(stream));
  return FileOpened(dw::real::freopen64(path, mode, stream));
}

DW_EXPORT int fclose(FILE* stream) {
  if (!Ready(dw::real::fclose)) return Unavailable(EOF);
  Closing(StreamFd(stream));
  return dw::real::fclose(stream);
}

DW_EXPORT FILE* tmpfile() {
  if (!Ready(dw::real::tmpfile)) return Unavailable<FILE*>(nullptr);
  return StreamOfType(dw::real::tmpfile(), wire::kFdFile);
}

DW_EXPORT FILE* tmpfile64() {
  if (!Ready(dw::real::tmpfile64)) return Unavailable<FILE*>(nullptr);
  return StreamOfType(dw::real::tmpfile64(), wire::kFdFile);
}

// The parent's end of the pipe is the program's descriptor; the child runs in a clone that
// calls no hook.
DW_EXPORT FILE* popen(const char* command, const char* mode) {
  if (!Ready(dw::real::popen)) return Unavailable<FILE*>(nullptr);
  return StreamOfType(dw::real::popen(command, mode), wire::kFdPipe);
}

DW_EXPORT int pclose(FILE* stream) {
  if (!Ready(dw::real::pclose)) return Unavailable(-1);
  Closing(StreamFd(stream));
  return dw::real::pclose(stream);
}

DW_EXPORT DIR* opendir(const char* path) {
  if (!Ready(dw::real::opendir)) return Unavailable<DIR*>(nullptr);
  DIR* directory = dw::real::opendir(path);
  return StreamCreated(directory, DirectoryFd(directory), [] { return wire::kFdDirectory; });
}

DW_EXPORT DIR* fdopendir(int fd) {
  if (!Ready(dw::real::fdopendir)) return Unavailable<DIR*>(nullptr);
  return Adopted(dw::real::fdopendir(fd), fd);
}

DW_EXPORT int closedir(DIR* directory) {
  if (!Ready(dw::real::closedir)) return Unavailable(-1);
  Closing(DirectoryFd(directory));
  return dw::real::closedir(directory);
}

// ---- Release ----

DW_EXPORT int close(int fd) {
  if (!Ready(dw::real::close)) return RawCall(SYS_close, fd);
  Closing(fd);
  return dw::real::close(fd);
}

DW_EXPORT int close_range(unsigned int first, unsigned int last, int flags) noexcept {
  if (!Ready(dw::real::close_range)) return RawCall(SYS_close_range, first, last, flags);
  {
    dw::HookScope scope;
    if (dw::Tracking()) dw::OnFdRangeClosing(first, last, flags);
  }
  return dw::real::close_range(first, last, flags);
}

DW_EXPORT void closefrom(int first) noexcept {
  const unsigned int from = first < 0 ? 0u : static_cast<unsigned int>(first);  // as glibc does
  if (!Ready(dw::real::closefrom)) {
    RawCall(SYS_close_range, from, ~0u, 0);
    return;
  }
  {
    dw::HookScope scope;
    if (dw::Tracking()) dw::OnFdRangeClosing(from, ~0u, 0);
  }
  dw::real::closefrom(first);
}
