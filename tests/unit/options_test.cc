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

// The sampling mean the shim takes from DRIFTWATCH_MODE (null: unset) and
// DRIFTWATCH_SAMPLE_BYTES; 0 is exact mode.
uint32_t SampleMeanWith(const char* mode, const char* mean) {
  setenv("DRIFTWATCH_LOG", "0", 1);
  if (mode != nullptr) {
    setenv("DRIFTWATCH_MODE", mode, 1);
  } else {
    unsetenv("DRIFTWATCH_MODE");
  }
  setenv("DRIFTWATCH_SAMPLE_BYTES", mean, 1);
  Options options;
  LoadOptions(options);
  unsetenv("DRIFTWATCH_MODE");
  unsetenv("DRIFTWATCH_SAMPLE_BYTES");
  return options.sample_mean_bytes;
}

// The mode: sampled only when asked for by name; a mean alone, or a misspelt mode, leaves the
// shim exact (a stray variable must not change what a run measures).
TEST(OptionsTest, SampledModeOnlyByName) {
  EXPECT_EQ(SampleMeanWith(nullptr, "4096"), 0u);
  EXPECT_EQ(SampleMeanWith("sampeld", "4096"), 0u);
  EXPECT_EQ(SampleMeanWith("exact", "4096"), 0u);
  EXPECT_EQ(SampleMeanWith("sampled", "4096"), 4096u);
  EXPECT_EQ(SampleMeanWith("sampled", "0"), Options::kDefaultSampleBytes);
}

}  // namespace
}  // namespace dw
