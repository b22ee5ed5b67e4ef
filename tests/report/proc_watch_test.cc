// Processes watched through /proc (`collect --pid/--match`): the parsing of /proc/PID/stat and of
// descriptor link targets, name matching, a sampler reading a fixture /proc tree (descriptor
// classes, pid reuse, links it must not follow) and this test's own processes (exit, zombie),
// and the watcher's log lines on a fixture whose threads grow, whose pid is reused, and which is
// handed over to the shim.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "report/analysis/watched_totals.h"
#include "report/commands/proc_watch.h"
#include "report/transport/proc_sampler.h"

namespace dw::report {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(ProcSamplerTest, ClassifiesDescriptorsByTheirLinkTarget) {
  EXPECT_EQ(ClassifyFdTarget("socket:[123]"), FdClass::kSocket);
  EXPECT_EQ(ClassifyFdTarget("pipe:[5]"), FdClass::kPipe);
  EXPECT_EQ(ClassifyFdTarget("anon_inode:[eventfd]"), FdClass::kAnonInode);
  EXPECT_EQ(ClassifyFdTarget("anon_inode:[eventpoll]"), FdClass::kAnonInode);
  EXPECT_EQ(ClassifyFdTarget("anon_inode:[timerfd]"), FdClass::kAnonInode);
  EXPECT_EQ(ClassifyFdTarget("anon_inode:[signalfd]"), FdClass::kAnonInode);
  EXPECT_EQ(ClassifyFdTarget("anon_inode:inotify"), FdClass::kAnonInode);
  EXPECT_EQ(ClassifyFdTarget("/dev/null"), FdClass::kFile);
  EXPECT_EQ(ClassifyFdTarget("/var/log/app.log (deleted)"), FdClass::kFile);
  EXPECT_EQ(ClassifyFdTarget("/memfd:jit (deleted)"), FdClass::kFile);
  EXPECT_EQ(ClassifyFdTarget("net:[4026531840]"), FdClass::kOther);
  EXPECT_EQ(ClassifyFdTarget("socket"), FdClass::kOther);  // no inode: not the kernel's form
  EXPECT_EQ(ClassifyFdTarget(""), FdClass::kOther);
  EXPECT_STREQ(FdClassName(FdClass::kAnonInode), "anon_inodes");
}

TEST(ProcSamplerTest, ParsesStatWithACommandNameHoldingSpacesAndParentheses) {
  // Fields 1-24 of a real /proc/PID/stat, comm "a) b (c".
  const std::string stat =
      "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 17 0 987654 "
      "123456789 2500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  std::optional<ProcStatSample> sample = ParseProcStatSample(stat);
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->comm, "a) b (c");
  EXPECT_EQ(sample->state, 'S');
  EXPECT_EQ(sample->ppid, 1u);
  EXPECT_EQ(sample->threads, 17);
  EXPECT_EQ(sample->start_ticks, 987654u);
  EXPECT_EQ(sample->rss_pages, 2500);
  EXPECT_FALSE(ParseProcStatSample("4242 (cut").has_value());
  EXPECT_FALSE(ParseProcStatSample("4242 (x) S 1 2 3").has_value());  // truncated
}

TEST(ProcSamplerTest, MatchesTheCommandNameTheLongNameAndTheExecutable) {
  EXPECT_TRUE(MatchesName("gosvc", {.comm = "gosvc", .argv0 = ""}, ""));
  EXPECT_FALSE(MatchesName("gosv", {.comm = "gosvc", .argv0 = "gosvc"}, "/bin/gosvc"));
  // comm keeps 15 bytes: the whole name is argv[0]'s.
  const ProcessNames cut = {.comm = "payment-reconci", .argv0 = "payment-reconciler"};
  EXPECT_TRUE(MatchesName("payment-reconciler", cut, ""));
  EXPECT_TRUE(MatchesName("payment-reconci", cut, ""));
  EXPECT_FALSE(MatchesName("payment-reconcilers", cut, ""));
  // The executable's basename, also after an upgrade replaced it on disk.
  EXPECT_TRUE(MatchesName("redis-check-rdb", {.comm = "redis-server", .argv0 = ""},
                          "/usr/bin/redis-check-rdb"));
  EXPECT_TRUE(MatchesName("gosvc", {.comm = "main", .argv0 = ""}, "/opt/svc/gosvc (deleted)"));
  EXPECT_FALSE(MatchesName("", {.comm = "", .argv0 = ""}, ""));
}

// A fake /proc/PID: stat, comm, cmdline, status, exe and fd/ as the kernel shows them.
class ProcFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("proc_fixture_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static void Write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  }
  // Process `pid` named `comm`, started at `start_ticks`, with `threads` threads.
  fs::path AddProcess(int pid, const std::string& comm, uint64_t start_ticks, int threads = 1,
                      const std::string& exe = "/usr/local/bin/gosvc") {
    const fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir / "fd");
    SetStat(pid, comm, start_ticks, threads);
    Write(dir / "comm", comm + "\n");
    Write(dir / "cmdline", exe + std::string("\0--serve\0", 9));
    Write(dir / "status", "Name:\t" + comm + "\nUid:\t1000\t1000\t1000\t1000\n");
    fs::create_symlink(exe, dir / "exe");
    return dir;
  }
  void SetStat(int pid, const std::string& comm, uint64_t start_ticks, int threads) {
    Write(root_ / std::to_string(pid) / "stat",
          std::to_string(pid) + " (" + comm + ") S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 " +
              std::to_string(threads) + " 0 " + std::to_string(start_ticks) +
              " 1000000 300 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
  }
  void AddFd(int pid, int fd, const std::string& target) {
    fs::create_symlink(target, root_ / std::to_string(pid) / "fd" / std::to_string(fd));
  }

  fs::path root_;
};

TEST_F(ProcFixture, SamplesDescriptorsByClassThreadsAndRss) {
  AddProcess(4242, "gosvc", 5000, 7);
  AddFd(4242, 0, "/dev/null");
  AddFd(4242, 3, "socket:[101]");
  AddFd(4242, 4, "socket:[102]");
  AddFd(4242, 5, "pipe:[7]");
  AddFd(4242, 6, "anon_inode:[eventpoll]");
  AddFd(4242, 7, "anon_inode:[eventfd]");
  AddFd(4242, 8, "net:[4026531840]");
  absl::StatusOr<WatchedProc> proc = WatchedProc::Open(4242, root_.string());
  ASSERT_TRUE(proc.ok()) << proc.status();
  EXPECT_EQ(proc->identity().start_ticks, 5000u);
  EXPECT_EQ(proc->identity().uid, 1000u);
  EXPECT_EQ(proc->identity().exe, "/usr/local/bin/gosvc");
  EXPECT_EQ(proc->identity().names.comm, "gosvc");
  EXPECT_EQ(proc->identity().names.argv0, "gosvc");
  std::optional<ProcSample> sample = proc->Sample();
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->threads, 7);
  EXPECT_EQ(sample->rss_bytes, 300 * sysconf(_SC_PAGESIZE));
  ASSERT_TRUE(sample->fds.has_value());
  EXPECT_THAT(*sample->fds, ElementsAre(1, 2, 1, 2, 1));  // files sockets pipes anon others
}

TEST_F(ProcFixture, AReusedPidIsAnotherLifetime) {
  AddProcess(4242, "gosvc", 5000);
  absl::StatusOr<WatchedProc> proc = WatchedProc::Open(4242, root_.string());
  ASSERT_TRUE(proc.ok()) << proc.status();
  ASSERT_TRUE(proc->Sample().has_value());
  SetStat(4242, "gosvc", 9000, 1);  // the same pid, started later: not the process we watch
  EXPECT_FALSE(proc->Sample().has_value());
}

TEST_F(ProcFixture, AnExecEndsTheImageARenameDoesNot) {
  const fs::path dir = AddProcess(4242, "gosvc", 5000);
  absl::StatusOr<WatchedProc> proc = WatchedProc::Open(4242, root_.string());
  ASSERT_TRUE(proc.ok()) << proc.status();
  SetStat(4242, "worker-1", 5000, 1);  // prctl(PR_SET_NAME): the same program
  EXPECT_TRUE(proc->Sample().has_value());
  EXPECT_FALSE(proc->exec_seen());
  SetStat(4242, "helper", 5000, 1);  // execve: another name and another executable
  fs::remove(dir / "exe");
  fs::create_symlink("/usr/bin/helper", dir / "exe");
  EXPECT_FALSE(proc->Sample().has_value());
  EXPECT_TRUE(proc->exec_seen());
}

TEST_F(ProcFixture, NeverFollowsLinksItShouldNot) {
  const fs::path real = AddProcess(4242, "gosvc", 5000);
  fs::create_symlink(real, root_ / "4243");  // a pid directory that is a link
  EXPECT_EQ(WatchedProc::Open(4243, root_.string()).status().code(), absl::StatusCode::kNotFound);
  // A stat file that is a link is not read through it.
  const fs::path other = AddProcess(4244, "gosvc", 6000);
  fs::remove(other / "stat");
  fs::create_symlink(real / "stat", other / "stat");
  EXPECT_FALSE(WatchedProc::Open(4244, root_.string()).ok());
}

TEST_F(ProcFixture, AnFdDirectoryThatIsALinkIsNotListed) {
  const fs::path dir = AddProcess(4242, "gosvc", 5000, 3);
  fs::remove_all(dir / "fd");
  fs::create_directories(root_ / "elsewhere");
  fs::create_symlink("socket:[1]", root_ / "elsewhere" / "3");
  fs::create_symlink(root_ / "elsewhere", dir / "fd");
  absl::StatusOr<WatchedProc> proc = WatchedProc::Open(4242, root_.string());
  ASSERT_TRUE(proc.ok()) << proc.status();
  std::optional<ProcSample> sample = proc->Sample();
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->threads, 3);
  EXPECT_FALSE(sample->fds.has_value());
}

TEST_F(ProcFixture, FindsProcessesByCommandNameOrExecutable) {
  AddProcess(100, "gosvc", 1);
  AddProcess(101, "main", 2, 1, "/opt/svc/gosvc");
  AddProcess(102, "bash", 3, 1, "/usr/bin/bash");
  AddProcess(103, "gosvc", 4);
  std::vector<pid_t> found = FindMatchingProcesses({"gosvc"}, 103, root_.string());
  std::sort(found.begin(), found.end());
  EXPECT_THAT(found, ElementsAre(100, 101));  // 103 is excluded (the collector itself)
}

TEST(ProcSamplerTest, SamplesThisProcessAndSeesAChildExitAndBecomeAZombie) {
  absl::StatusOr<WatchedProc> self = WatchedProc::Open(getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::optional<ProcSample> sample = self->Sample();
  ASSERT_TRUE(sample.has_value());
  ASSERT_TRUE(sample->fds.has_value());
  EXPECT_GE((*sample->fds)[static_cast<size_t>(FdClass::kPipe)], 2);
  EXPECT_GE(sample->threads, 1);
  EXPECT_GT(sample->rss_bytes, 0);
  close(fds[0]);
  close(fds[1]);

  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  absl::StatusOr<WatchedProc> proc = WatchedProc::Open(child);
  ASSERT_TRUE(proc.ok()) << proc.status();
  EXPECT_TRUE(proc->Sample().has_value());
  kill(child, SIGKILL);
  // Not reaped yet: a zombie, gone for the sampler.
  for (int i = 0; i < 200 && proc->Sample().has_value(); ++i) usleep(5000);
  EXPECT_FALSE(proc->Sample().has_value());
  EXPECT_EQ(WatchedProc::Open(child).status().code(), absl::StatusCode::kNotFound);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(proc->Sample().has_value());
  EXPECT_EQ(WatchedProc::Open(child).status().code(), absl::StatusCode::kNotFound);
}

// The watcher over a fixture: log lines and the ended history.
class WatcherFixture : public ProcFixture {
 protected:
  void SetUp() override {
    ProcFixture::SetUp();
    options_.proc_root = root_.string();
    options_.match_names = {"gosvc"};
    options_.interval_s = 0.001;
    options_.rescan_s = 0.001;
  }
  ProcWatcher MakeWatcher() {
    return ProcWatcher(options_, analyzer_, budgets_, ended_,
                       [this](const std::string& line) { lines_.push_back(line); });
  }
  // Ticks until every sample and scan due has run.
  void TickFor(ProcWatcher& watcher, int ticks) {
    for (int i = 0; i < ticks; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      watcher.Tick(ProcWatcher::Clock::now());
    }
  }
  std::vector<std::string> LinesWith(const std::string& text) const {
    std::vector<std::string> found;
    for (const std::string& line : lines_) {
      if (line.find(text) != std::string::npos) found.push_back(line);
    }
    return found;
  }

  ProcWatchOptions options_;
  RobustDriftAnalyzer analyzer_;
  DriftBudgets budgets_;
  EndedProcesses ended_;
  std::vector<std::string> lines_;
};

TEST_F(WatcherFixture, ThreadsThatGrowStartADriftThatEndsWithTheProcess) {
  AddProcess(4242, "gosvc", 5000, 1);
  ProcWatcher watcher = MakeWatcher();
  ASSERT_TRUE(watcher.Open().ok());
  for (int threads = 1; threads <= 40; ++threads) {
    SetStat(4242, "gosvc", 5000, threads);
    TickFor(watcher, 1);
    if (threads % 5 == 0) watcher.Check();
  }
  EXPECT_THAT(LinesWith("watch gosvc[4242]"), Contains(HasSubstr("by --match gosvc")));
  EXPECT_THAT(LinesWith("drift-start gosvc[4242] total threads: +"), Not(IsEmpty()));
  EXPECT_THAT(LinesWith("drift-start gosvc[4242] total fds"), IsEmpty());
  fs::remove_all(root_ / "4242");  // it exited
  TickFor(watcher, 2);
  EXPECT_THAT(LinesWith("end gosvc[4242]"), ElementsAre(HasSubstr("verdict drift (total threads")));
  ASSERT_EQ(ended_.entries().size(), 1u);
  EXPECT_EQ(ended_.entries().front().verdict, Verdict::kDrift);
  EXPECT_EQ(ended_.entries().front().label.name, "gosvc");
  EXPECT_EQ(watcher.watched(), 0u);
}

TEST_F(WatcherFixture, AReusedPidEndsOneSeriesAndStartsAnother) {
  AddProcess(4242, "gosvc", 5000);
  ProcWatcher watcher = MakeWatcher();
  ASSERT_TRUE(watcher.Open().ok());
  TickFor(watcher, 3);
  SetStat(4242, "gosvc", 7000, 1);  // restarted, and the kernel gave it the same pid
  TickFor(watcher, 3);
  EXPECT_EQ(LinesWith("watch gosvc[4242]").size(), 2u);
  EXPECT_EQ(LinesWith("end gosvc[4242]").size(), 1u);
  EXPECT_EQ(watcher.watched(), 1u);
}

TEST_F(WatcherFixture, APidThatExecsIsWatchedOnAsANewImage) {
  const fs::path dir = AddProcess(4242, "sh", 5000, 1, "/usr/bin/dash");
  options_.match_names.clear();
  options_.pids = {4242};
  ProcWatcher watcher = MakeWatcher();
  ASSERT_TRUE(watcher.Open().ok());
  TickFor(watcher, 2);
  SetStat(4242, "gosvc", 5000, 1);
  fs::remove(dir / "exe");
  fs::create_symlink("/usr/local/bin/gosvc", dir / "exe");
  fs::remove(dir / "comm");
  Write(dir / "comm", "gosvc\n");
  TickFor(watcher, 2);
  EXPECT_THAT(LinesWith("end sh[4242]"), ElementsAre(HasSubstr("it exec'd another program")));
  EXPECT_THAT(LinesWith("watch gosvc[4242] exe=/usr/local/bin/gosvc"),
              ElementsAre(HasSubstr("--pid")));
  EXPECT_EQ(watcher.watched(), 1u);
}

TEST_F(WatcherFixture, AProcessUnderTheShimIsCountedOnce) {
  AddProcess(4242, "gosvc", 5000);
  AddProcess(4243, "gosvc", 5001);
  ProcWatcher watcher = MakeWatcher();
  watcher.set_under_shim([](uint32_t pid, uint64_t) { return pid == 4243; });
  ASSERT_TRUE(watcher.Open().ok());
  TickFor(watcher, 3);
  EXPECT_EQ(LinesWith("watch gosvc[4242]").size(), 1u);
  EXPECT_THAT(LinesWith("gosvc[4243]"), IsEmpty());
  // Its connection arrives: handed over, not ended, and not found again by the next scans.
  watcher.set_under_shim([](uint32_t, uint64_t) { return true; });
  watcher.HandOver(4242, 5000);
  TickFor(watcher, 3);
  EXPECT_THAT(LinesWith("unwatch gosvc[4242]"), ElementsAre(HasSubstr("under the shim")));
  EXPECT_THAT(LinesWith("end gosvc"), IsEmpty());
  EXPECT_EQ(watcher.watched(), 0u);
  EXPECT_TRUE(ended_.entries().empty());
}

TEST_F(WatcherFixture, APidThatDoesNotExistIsASetUpError) {
  options_.match_names.clear();
  options_.pids = {4242};
  absl::Status status = CheckWatchedPids(options_);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--pid 4242: no process 4242"));
  AddProcess(4242, "gosvc", 5000);
  EXPECT_TRUE(CheckWatchedPids(options_).ok());
}

}  // namespace
}  // namespace dw::report
