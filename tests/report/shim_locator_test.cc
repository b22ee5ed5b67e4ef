// Tests of the shim search order.
#include "report/commands/shim_locator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace dw::report {
namespace {

namespace fs = std::filesystem;

class ShimLocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("dw-shim-test-" + std::to_string(getpid()));
    fs::create_directories(root_ / "bin");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Touch(const fs::path& path) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << "x";
  }
  fs::path root_;
};

TEST_F(ShimLocatorTest, PrefersTheEnvironment) {
  Touch(root_ / "custom.so");
  Touch(root_ / "lib" / "libdriftwatch.so");
  auto found = LocateShimFrom((root_ / "custom.so").string(), (root_ / "bin/driftwatch").string());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, (root_ / "custom.so").string());
}

TEST_F(ShimLocatorTest, MissingEnvironmentPathIsAnError) {
  Touch(root_ / "lib" / "libdriftwatch.so");
  auto found = LocateShimFrom((root_ / "nope.so").string(), (root_ / "bin/driftwatch").string());
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("DRIFTWATCH_SHIM"), absl::string_view::npos);
}

TEST_F(ShimLocatorTest, FindsTheBuildTree) {
  Touch(root_ / "lib" / "libdriftwatch.so");
  auto found = LocateShimFrom(std::nullopt, (root_ / "bin/driftwatch").string());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, (root_ / "lib/libdriftwatch.so").string());
}

TEST_F(ShimLocatorTest, FindsTheInstalledTree) {
  const fs::path installed =
      (root_ / "bin" / DRIFTWATCH_SHIM_RELATIVE_DIR / "libdriftwatch.so").lexically_normal();
  Touch(installed);
  auto found = LocateShimFrom(std::nullopt, (root_ / "bin/driftwatch").string());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, installed.string());
}

TEST_F(ShimLocatorTest, NotFoundSaysWhereItLooked) {
  auto found = LocateShimFrom(std::nullopt, (root_ / "bin/driftwatch").string());
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("lib/libdriftwatch.so"), absl::string_view::npos);
}

}  // namespace
}  // namespace dw::report
