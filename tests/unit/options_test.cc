#include "preload/options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace dw {
namespace {

TEST(OptionsTest, ParseBoundedUint) {
  uint32_t value = 7;
  EXPECT_TRUE(ParseBoundedUint("250", 10, 1000, &value));
  EXPECT_EQ(value, 250u);
  EXPECT_FALSE(ParseBoundedUint("5", 10, 1000, &value));
  EXPECT_FALSE(ParseBoundedUint("1001", 10, 1000, &value));
  EXPECT_FALSE(ParseBoundedUint("12ms", 10, 1000, &value));
  EXPECT_FALSE(ParseBoundedUint("", 10, 1000, &value));
  EXPECT_FALSE(ParseBoundedUint("99999999999999999999", 10, 1000, &value));
  EXPECT_EQ(value, 250u);  // failures leave the value alone
}

TEST(OptionsTest, BadValuesKeepDefaults) {
  setenv("DRIFTWATCH_INTERVAL_MS", "fast", 1);
  setenv("DRIFTWATCH_DEPTH", "32", 1);
  setenv("DRIFTWATCH_SOCKET", "/tmp/x.sock", 1);
  setenv("DRIFTWATCH_LOG", "0", 1);
  Options options;
  LoadOptions(options);
  EXPECT_EQ(options.interval_ms, 1000u);
  EXPECT_EQ(options.depth, 32u);
  EXPECT_STREQ(options.socket_path, "/tmp/x.sock");
  EXPECT_TRUE(options.enabled());
  unsetenv("DRIFTWATCH_SOCKET");
  Options dormant;
  LoadOptions(dormant);
  EXPECT_FALSE(dormant.enabled());
}

// The mode: sampled only when asked for by name; a mean alone, or a misspelt mode, leaves the
// shim exact (a stray variable must not change what a run measures).
TEST(OptionsTest, SampledModeOnlyByName) {
  setenv("DRIFTWATCH_LOG", "0", 1);
  setenv("DRIFTWATCH_SAMPLE_BYTES", "4096", 1);
  unsetenv("DRIFTWATCH_MODE");
  Options exact;
  LoadOptions(exact);
  EXPECT_EQ(exact.sample_mean_bytes, 0u);
  setenv("DRIFTWATCH_MODE", "sampeld", 1);
  Options misspelt;
  LoadOptions(misspelt);
  EXPECT_EQ(misspelt.sample_mean_bytes, 0u);
  setenv("DRIFTWATCH_MODE", "sampled", 1);
  Options sampled;
  LoadOptions(sampled);
  EXPECT_EQ(sampled.sample_mean_bytes, 4096u);
  setenv("DRIFTWATCH_SAMPLE_BYTES", "0", 1);
  Options bad_mean;
  LoadOptions(bad_mean);
  EXPECT_EQ(bad_mean.sample_mean_bytes, Options::kDefaultSampleBytes);
  unsetenv("DRIFTWATCH_MODE");
  unsetenv("DRIFTWATCH_SAMPLE_BYTES");
}

}  // namespace
}  // namespace dw
