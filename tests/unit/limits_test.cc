#include "preload/limits.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace dw {
namespace {

TEST(LimitsTest, ReadsRlimitsAndSystemWideLimits) {
  rlimit nofile;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &nofile), 0);
  wire::Limits limits = ReadLimits();
  EXPECT_EQ(limits.nofile_soft, nofile.rlim_cur == RLIM_INFINITY ? 0 : nofile.rlim_cur);
  EXPECT_EQ(limits.nofile_hard, nofile.rlim_max == RLIM_INFINITY ? 0 : nofile.rlim_max);
  EXPECT_GT(limits.threads_max, 0u);
  EXPECT_GT(limits.memory_total_bytes, 64u << 20);
}

TEST(LimitsTest, FollowsALoweredSoftLimit) {
  rlimit original;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  rlimit lowered = original;
  lowered.rlim_cur = 512;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  EXPECT_EQ(ReadLimits().nofile_soft, 512u);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
}

}  // namespace
}  // namespace dw
