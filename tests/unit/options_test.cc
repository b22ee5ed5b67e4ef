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

}  // namespace
}  // namespace dw
