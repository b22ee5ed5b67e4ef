// json_writer.h: a small streaming JSON writer for the verdict file.
//
// Produces compact, valid JSON: strings are escaped per RFC 8259 (control characters as \u00XX,
// invalid UTF-8 bytes replaced by U+FFFD so that paths with odd bytes still give valid JSON),
// non-finite doubles become null. The caller is responsible for balanced Begin/End calls; misuse
// is a programming error caught by the tests, not a runtime condition.
//
// Thread-safety: not thread-safe. Allocation: yes (collector code). Never runs inside a hook.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dw::report {

class JsonWriter {
 public:
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  // Within an object: the key of the next value.
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void UInt(uint64_t value);
  void Double(double value);
  void Bool(bool value);
  void Null();

  const std::string& str() const { return out_; }

 private:
  void BeforeValue();
  void AppendEscaped(std::string_view value);

  std::string out_;
  // Per open container: whether a value was already written (a comma is needed).
  std::vector<bool> has_value_;
  bool after_key_ = false;
};

}  // namespace dw::report
