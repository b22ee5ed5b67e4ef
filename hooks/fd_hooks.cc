// fd_hooks.cc: every call that creates or releases a file descriptor (being written).
