// peak_rss: runs a command and writes the peak RSS (VmHWM) of every process of its tree, read at
// the moment each one exits, for bench/overhead.
//
// /usr/bin/time reports one maximum for a whole tree (the largest child's), which cannot tell
// the `driftwatch` collector from the target it runs; polling /proc misses what happens between
// the last poll and the exit (the collector symbolizes and analyses right at the end). So this
// runs the command under ptrace with PTRACE_O_TRACEEXIT (and follows forks and clones): every
// process stops once just before it exits, while its memory is still there, and its VmHWM is
// read then. Tracees stop only at clone, fork, exec and exit (and on signals, passed on as they
// were), so the timing of the command changes little; bench/overhead runs every mode under it
// alike.
//
// Usage: bench_peak_rss OUTFILE COMMAND [ARGS...]
//   OUTFILE gets one line per process (thread-group leader) that exited:
//     pid=N ppid=N hwm_kb=N exe=PATH
// Exit status: the command's (128+N if killed by signal N); 125 if it could not be run.
// SIGINT and SIGTERM sent to peak_rss are passed to the command.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t root;

static void PassOn(int sig) {
  if (root > 0) kill(root, sig);
}

// Reads "Key:\t<number>" from /proc/PID/status; -1 if absent.
static long StatusField(const char* status, const char* key) {
  const char* p = strstr(status, key);
  return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

// Writes the line of a process about to exit, if it is a thread-group leader.
static void Record(FILE* out, pid_t pid) {
  char path[64], status[4096], exe[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE* f = fopen(path, "re");
  if (!f) return;
  size_t n = fread(status, 1, sizeof status - 1, f);
  fclose(f);
  status[n] = '\0';
  if (StatusField(status, "\nTgid:") != pid) return;  // a thread, not a process
  snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
  ssize_t len = readlink(path, exe, sizeof exe - 1);
  exe[len > 0 ? len : 0] = '\0';
  fprintf(out, "pid=%d ppid=%ld hwm_kb=%ld exe=%s\n", (int)pid, StatusField(status, "\nPPid:"),
          StatusField(status, "\nVmHWM:"), len > 0 ? exe : "?");
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OUTFILE COMMAND [ARGS...]\n", argv[0]);
    return 125;
  }
  FILE* out = fopen(argv[1], "we");
  if (!out) {
    perror(argv[1]);
    return 125;
  }
  root = fork();
  if (root < 0) return 125;
  if (root == 0) {
    ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    raise(SIGSTOP);  // lets the parent set the options before exec
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(125);
  }
  signal(SIGINT, PassOn);
  signal(SIGTERM, PassOn);
  int st;
  if (waitpid(root, &st, 0) != root || !WIFSTOPPED(st)) return 125;
  long options = PTRACE_O_TRACEEXIT | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                 PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
  if (ptrace(PTRACE_SETOPTIONS, root, NULL, (void*)options) != 0) return 125;
  ptrace(PTRACE_CONT, root, NULL, NULL);
  int exit_code = 125;
  for (;;) {
    pid_t pid = waitpid(-1, &st, __WALL);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: every tracee is gone
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      if (pid == root) exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      continue;
    }
    if (!WIFSTOPPED(st)) continue;
    int event = st >> 16, sig = WSTOPSIG(st);
    if (event == PTRACE_EVENT_EXIT) Record(out, pid);
    // Event stops and the SIGSTOP a new tracee starts with are ours; other signals go on.
    int pass = (event != 0 || sig == SIGSTOP || sig == SIGTRAP) ? 0 : sig;
    ptrace(PTRACE_CONT, pid, NULL, (void*)(long)pass);
  }
  fclose(out);
  return exit_code;
}
