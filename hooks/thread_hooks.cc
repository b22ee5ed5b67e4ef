// thread_hooks.cc: thread creation, exit, join and detach (being written).
