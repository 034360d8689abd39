// JsonWriter: a small streaming JSON emitter (commas and escaping handled).
// Private to the recorder library.
//
//   JsonWriter w;
//   w.BeginObject(); w.Key("name"); w.String("nic0"); w.EndObject();
//   std::string text = w.Take();
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace umbra::recorder {

class JsonWriter {
 public:
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Double(double value);
  void Bool(bool value);
  void Null();

  // Shorthands for "key": value.
  void Field(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const char* value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, int64_t value) {
    Key(key);
    Int(value);
  }
  void Field(std::string_view key, uint64_t value) {
    Key(key);
    Uint(value);
  }
  void Field(std::string_view key, double value) {
    Key(key);
    Double(value);
  }

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

  static void AppendEscaped(std::string& out, std::string_view s);

 private:
  void Open(char c);
  void Close(char c);
  void Separate();

  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

}  // namespace umbra::recorder
