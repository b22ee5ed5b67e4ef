// `driftwatch collect` and `driftwatch env` in parts: the environment in each format, the labels
// of process lifetimes, drift start/stop with its hysteresis, the bounded history of ended
// processes, who may connect, and the collector's socket at a path of its own (stale sockets,
// a live one, ended connections handed over and freed).
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "report/analysis/live_processes.h"
#include "report/commands/collect_command.h"
#include "report/commands/env_command.h"
#include "report/transport/collector.h"
#include "tests/report/cli_runner.h"

namespace dw::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

EnvOptions Env(EnvFormat format) {
  EnvOptions options;
  options.shim_path = "/opt/driftwatch/lib/libdriftwatch.so";
  options.shim.socket_path = "/run/driftwatch/census.sock";
  options.format = format;
  return options;
}

TEST(EnvTest, ShellExportsTheShimFirstAndSampledModeByDefault) {
  const std::string text = RenderEnvironment(Env(EnvFormat::kShell));
  EXPECT_THAT(text, HasSubstr("export LD_PRELOAD='/opt/driftwatch/lib/libdriftwatch.so'"
                              "\"${LD_PRELOAD:+:$LD_PRELOAD}\"\n"));
  EXPECT_THAT(text, HasSubstr("export DRIFTWATCH_SOCKET='/run/driftwatch/census.sock'\n"));
  EXPECT_THAT(text, HasSubstr("export DRIFTWATCH_MODE='sampled'\n"));
  EXPECT_THAT(text, HasSubstr("export DRIFTWATCH_SAMPLE_BYTES='524288'\n"));
  EXPECT_THAT(text, Not(HasSubstr("DRIFTWATCH_INTERVAL_MS")));
}

TEST(EnvTest, ShellOutputSetsTheVariablesInARealShell) {
  EnvOptions options = Env(EnvFormat::kShell);
  options.shim.socket_path = "/tmp/it's here/census.sock";  // a quote and a blank
  options.shim.interval_ms = 250;
  const std::string script = RenderEnvironment(options) +
                             "printf '%s|%s|%s|%s' \"$LD_PRELOAD\" \"$DRIFTWATCH_SOCKET\" "
                             "\"$DRIFTWATCH_INTERVAL_MS\" \"$DRIFTWATCH_MODE\"";
  const std::string path = ::testing::TempDir() + "/env_test.sh";
  FILE* file = std::fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs(script.c_str(), file);
  std::fclose(file);
  FILE* shell = popen(("LD_PRELOAD=/other.so sh " + path).c_str(), "r");
  ASSERT_NE(shell, nullptr);
  char output[512] = {};
  const size_t got = std::fread(output, 1, sizeof(output) - 1, shell);
  pclose(shell);
  EXPECT_EQ(
      std::string(output, got),
      "/opt/driftwatch/lib/libdriftwatch.so:/other.so|/tmp/it's here/census.sock|250|sampled");
}

TEST(EnvTest, SystemdDropInQuotesAndEscapesSpecifiers) {
  EnvOptions options = Env(EnvFormat::kSystemd);
  options.shim.sample_mean_bytes = 0;  // --mode exact
  options.shim.socket_path = "/run/dw 100%/census.sock";
  const std::string text = RenderEnvironment(options);
  EXPECT_THAT(text, HasSubstr("[Service]\n"));
  EXPECT_THAT(text, HasSubstr("Environment=LD_PRELOAD=/opt/driftwatch/lib/libdriftwatch.so\n"));
  EXPECT_THAT(text, HasSubstr("Environment=\"DRIFTWATCH_SOCKET=/run/dw 100%%/census.sock\"\n"));
  EXPECT_THAT(text, Not(HasSubstr("DRIFTWATCH_MODE")));  // exact is the shim's default
}

TEST(EnvTest, KubernetesEnvList) {
  EnvOptions options = Env(EnvFormat::kKubernetes);
  options.shim.sample_mean_bytes = 65536;
  EXPECT_THAT(RenderEnvironment(options),
              HasSubstr("env:\n"
                        "  - name: LD_PRELOAD\n"
                        "    value: \"/opt/driftwatch/lib/libdriftwatch.so\"\n"
                        "  - name: DRIFTWATCH_SOCKET\n"
                        "    value: \"/run/driftwatch/census.sock\"\n"
                        "  - name: DRIFTWATCH_MODE\n"
                        "    value: \"sampled\"\n"
                        "  - name: DRIFTWATCH_SAMPLE_BYTES\n"
                        "    value: \"65536\"\n"));
}

TEST(EnvTest, SocketPathMustBeAbsoluteAndFitSunPath) {
  EXPECT_TRUE(CheckSocketPath("/run/driftwatch/census.sock").ok());
  EXPECT_FALSE(CheckSocketPath("census.sock").ok());
  EXPECT_FALSE(CheckSocketPath("/" + std::string(sizeof(sockaddr_un::sun_path), 'x')).ok());
  EXPECT_TRUE(IsShimVariable("DRIFTWATCH_MODE=exact"));
  EXPECT_FALSE(IsShimVariable("DRIFTWATCH_MODES=x"));
}

HelloInfo Hello(uint32_t pid, std::string exe) {
  HelloInfo hello;
  hello.identity.pid = pid;
  hello.identity.exe = std::move(exe);
  hello.identity.start_time_ticks = 100;
  hello.identity.clock_ticks_per_second = 100;
  return hello;
}

TEST(LabelTest, CommandNameOverTheSymlinksTarget) {
  const ProcessLabel label =
      LabelProcess(Hello(42, "/usr/bin/redis-check-rdb"),
                   ProcessNames{.comm = "redis-server", .argv0 = "redis-server"});
  EXPECT_EQ(label.Describe(), "redis-server[42]");
  EXPECT_EQ(label.exe, "/usr/bin/redis-check-rdb");
  EXPECT_GT(label.started_unix_s, 0);
}

TEST(LabelTest, TruncatedCommNameCompletedFromArgv0) {
  EXPECT_EQ(LabelProcess(Hello(7, "/x/e2e_leak_per_request"),
                         ProcessNames{.comm = "audit-service-w", .argv0 = "audit-service-worker"})
                .name,
            "audit-service-worker");
  // A comm set by the program (prctl PR_SET_NAME) that is not argv[0]'s prefix stays.
  EXPECT_EQ(
      LabelProcess(Hello(7, "/x/y"), ProcessNames{.comm = "postgres: walwri", .argv0 = "postgres"})
          .name,
      "postgres: walwri");
  // Gone before it could be read: the executable's name.
  EXPECT_EQ(LabelProcess(Hello(7, "/usr/sbin/nginx"), std::nullopt).name, "nginx");
}

DriftingSite Site(std::string where, double slope = 100) {
  return {.kind = wire::Kind::kHeap,
          .where = std::move(where),
          .slope_per_hour = slope,
          .unit = "bytes"};
}

TEST(DriftTrackerTest, StartsAfterHitsInARowStopsAfterMissesInARow) {
  static_assert(DriftTracker::kStartAfter == 2);
  DriftTracker tracker;
  // Once is not enough, nor twice with a miss between.
  EXPECT_TRUE(tracker.Update({Site("leak (a.c:1)")}).started.empty());
  EXPECT_TRUE(tracker.Update({}).stopped.empty());
  EXPECT_TRUE(tracker.Update({Site("leak (a.c:1)")}).started.empty());
  DriftChanges changes = tracker.Update({Site("leak (a.c:1)", 150)});
  ASSERT_EQ(changes.started.size(), 1u);
  EXPECT_EQ(changes.started[0].where, "leak (a.c:1)");
  EXPECT_EQ(changes.started[0].slope_per_hour, 150);
  // Drifting again with another slope: nothing to say.
  changes = tracker.Update({Site("leak (a.c:1)", 300)});
  EXPECT_TRUE(changes.started.empty() && changes.stopped.empty());
  // Missed, then found again: no stop, no second start.
  EXPECT_TRUE(tracker.Update({}).stopped.empty());
  changes = tracker.Update({Site("leak (a.c:1)", 200)});
  EXPECT_TRUE(changes.started.empty() && changes.stopped.empty());
  for (int i = 1; i < DriftTracker::kStopAfter; ++i) {
    EXPECT_TRUE(tracker.Update({}).stopped.empty());
  }
  EXPECT_EQ(tracker.drifting().size(), 1u);
  changes = tracker.Update({});
  ASSERT_EQ(changes.stopped.size(), 1u);
  EXPECT_EQ(changes.stopped[0].slope_per_hour, 200);  // the last slope seen
  EXPECT_TRUE(tracker.drifting().empty());
  // Another kind at the same frame is another site.
  DriftingSite fds = Site("leak (a.c:1)");
  fds.kind = wire::Kind::kFds;
  tracker.Update({Site("leak (a.c:1)"), fds});
  EXPECT_EQ(tracker.Update({Site("leak (a.c:1)"), fds}).started.size(), 2u);
}

TEST(EndedProcessesTest, KeepsTheLastNAndCountsTheDropped) {
  EndedProcesses ended(3);
  for (uint32_t pid = 1; pid <= 10; ++pid) {
    ProcessSummary summary;
    summary.label.pid = pid;
    ended.Add(std::move(summary));
  }
  ASSERT_EQ(ended.entries().size(), 3u);
  EXPECT_EQ(ended.entries().front().label.pid, 8u);
  EXPECT_EQ(ended.entries().back().label.pid, 10u);
  EXPECT_EQ(ended.dropped(), 7u);
  EndedProcesses none(0);
  none.Add(ProcessSummary());
  EXPECT_TRUE(none.entries().empty());
  EXPECT_EQ(none.dropped(), 1u);
}

TEST(CollectAdmissionTest, OwnUidAndRootUnlessOthersAllowed) {
  CollectOptions options;
  EXPECT_TRUE(CollectorAdmits(1000, 1000, options));
  EXPECT_TRUE(CollectorAdmits(0, 1000, options));
  EXPECT_FALSE(CollectorAdmits(1001, 1000, options));
  options.allowed_uids = {1001};
  EXPECT_TRUE(CollectorAdmits(1001, 1000, options));
  EXPECT_FALSE(CollectorAdmits(1002, 1000, options));
  options.allow_any_uid = true;
  EXPECT_TRUE(CollectorAdmits(1002, 1000, options));
}

// A client connected to `path`; -1 when connect fails.
int ConnectTo(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string TempSocketPath(const char* name) {
  std::string dir = "/tmp/dw-collect-test-XXXXXX";
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  return dir + "/" + name;
}

TEST(CollectorListenTest, ReplacesAStaleSocketRefusesALiveOneAndCleansUp) {
  const std::string path = TempSocketPath("census.sock");
  {
    // A stale socket: bound, never listened on, its owner gone.
    const int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(bind(stale, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    close(stale);
  }
  auto collector = Collector::Listen(path, 0600);
  ASSERT_TRUE(collector.ok()) << collector.status();
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  // A second collector on the same path would steal the first one's processes.
  auto second = Collector::Listen(path, 0600);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("another collector"));
  EXPECT_FALSE(Collector::Listen("relative.sock", 0600).ok());
  collector->reset();
  EXPECT_NE(stat(path.c_str(), &info), 0) << "the socket was left behind";
  // Not a socket: left alone.
  FILE* file = std::fopen(path.c_str(), "w");
  std::fclose(file);
  EXPECT_FALSE(Collector::Listen(path, 0600).ok());
  EXPECT_EQ(stat(path.c_str(), &info), 0);
  unlink(path.c_str());
  rmdir(path.substr(0, path.rfind('/')).c_str());
}

TEST(CollectorListenTest, EndedConnectionsAreHandedOverOnceAndForgotten) {
  const std::string path = TempSocketPath("census.sock");
  auto collector = Collector::Listen(path, 0600);
  ASSERT_TRUE(collector.ok()) << collector.status();
  Collector& live = **collector;
  const int first = ConnectTo(path), second = ConnectTo(path);
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  for (int i = 0; i < 20 && live.OpenIds().size() < 2; ++i) ASSERT_TRUE(live.PollOnce(50, {}).ok());
  ASSERT_EQ(live.OpenIds().size(), 2u);
  const uint32_t first_id = live.OpenIds()[0];
  ASSERT_NE(live.Peek(first_id), nullptr);
  ASSERT_TRUE(live.Peek(first_id)->names.has_value());
  EXPECT_EQ(live.Peek(first_id)->names->comm.empty(), false);  // ours, read at accept
  EXPECT_TRUE(live.Snapshot(first_id).has_value());
  close(first);
  std::vector<Collector::Ended> ended;
  for (int i = 0; i < 20 && ended.empty(); ++i) {
    ASSERT_TRUE(live.PollOnce(50, {}).ok());
    ended = live.TakeEnded();
  }
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].id, first_id);
  EXPECT_TRUE(ended[0].record.eof);
  EXPECT_TRUE(live.TakeEnded().empty());
  EXPECT_EQ(live.Peek(first_id), nullptr);
  EXPECT_FALSE(live.Snapshot(first_id).has_value());
  EXPECT_EQ(live.OpenIds().size(), 1u);
  close(second);
  collector->reset();
  rmdir(path.substr(0, path.rfind('/')).c_str());
}

TEST(CollectCliTest, BadOptionsExitTwoNamingTheOption) {
  struct Case {
    const char* args;
    const char* says;
  };
  const Case cases[] = {
      {"collect", "--socket is required"},
      {"collect --socket relative.sock", "must be absolute"},
      {"collect --socket /tmp/x.sock --check-every 0", "--check-every"},
      {"collect --socket /tmp/x.sock --keep-ended lots", "--keep-ended"},
      {"collect --socket /tmp/x.sock --allow-user no-such-user-here", "no user"},
      {"collect --socket /nonexistent-dir/x.sock", "cannot bind"},
      {"collect --pid 0", "--pid wants a process id"},
      {"collect --pid 2147483646", "--pid 2147483646: no process"},
      {"collect --match bin/gosvc", "--match wants a command name"},
      {"env", "--socket is required"},
      {"env --socket /tmp/x.sock --format yaml", "--format"},
      {"env --socket /tmp/x.sock --mode fast", "--mode"},
      {"env --socket /tmp/x.sock --shim lib.so", "--shim"},
  };
  for (const Case& bad : cases) {
    const cli::Outcome outcome = cli::RunCli(bad.args, cli::kShimEnv);
    EXPECT_EQ(outcome.exit_code, 2) << bad.args << ": " << outcome.output;
    EXPECT_THAT(outcome.output, HasSubstr(bad.says)) << bad.args;
  }
}

TEST(CollectCliTest, EnvPrintsTheLocatedShimInSampledMode) {
  const cli::Outcome outcome =
      cli::RunCli("env --socket /run/dw/census.sock --format systemd", cli::kShimEnv);
  ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_THAT(outcome.output, HasSubstr(std::string("Environment=LD_PRELOAD=") + NOOP_SHIM));
  EXPECT_THAT(outcome.output, HasSubstr("Environment=DRIFTWATCH_MODE=sampled\n"));
  EXPECT_EQ(cli::RunCli("collect --help").exit_code, 0);
  EXPECT_THAT(cli::RunCli("collect --help").output, HasSubstr("--allow-user"));
}

}  // namespace
}  // namespace dw::report
