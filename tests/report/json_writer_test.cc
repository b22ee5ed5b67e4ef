// Tests of JsonWriter: structure, escaping and numbers.
#include "report/outputs/json_writer.h"

#include <gtest/gtest.h>

#include <limits>

namespace dw::report {
namespace {

TEST(JsonWriterTest, WritesNestedStructures) {
  JsonWriter json;
  json.BeginObject();
  json.Key("a");
  json.BeginArray();
  json.Int(-1);
  json.UInt(18446744073709551615u);
  json.Bool(true);
  json.Null();
  json.BeginObject();
  json.EndObject();
  json.EndArray();
  json.Key("b");
  json.Double(1.5);
  json.EndObject();
  EXPECT_EQ(json.str(), R"({"a":[-1,18446744073709551615,true,null,{}],"b":1.5})");
}

TEST(JsonWriterTest, EscapesStrings) {
  JsonWriter json;
  json.String(std::string("q\"b\\n\n\t\x01\x1f/é\0z", 14));
  EXPECT_EQ(json.str(), "\"q\\\"b\\\\n\\n\\t\\u0001\\u001f/é\\u0000z\"");
}

TEST(JsonWriterTest, ReplacesInvalidUtf8) {
  JsonWriter json;
  json.String(
      "a\xff"
      "b\xc3");  // a stray byte and a truncated sequence
  EXPECT_EQ(json.str(), R"("a\ufffdb\ufffd")");
  JsonWriter overlong;
  overlong.String("\xc0\xaf");  // overlong encoding of '/'
  EXPECT_EQ(overlong.str(), R"("\ufffd\ufffd")");
}

TEST(JsonWriterTest, NonFiniteDoublesAreNull) {
  JsonWriter json;
  json.BeginArray();
  json.Double(std::numeric_limits<double>::infinity());
  json.Double(std::numeric_limits<double>::quiet_NaN());
  json.Double(-0.0);
  json.Double(1e300);
  json.EndArray();
  EXPECT_EQ(json.str(), "[null,null,0,1e+300]");
}

}  // namespace
}  // namespace dw::report
