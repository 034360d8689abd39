// A small strict JSON parser for the recorder tests, independent of the
// writer under test (and of protobuf's Struct, whose map layout differs
// between sanitizer and plain builds of libprotobuf).
#pragma once

#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace umbra::recorder::testing {

struct Json {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  bool Has(const std::string& key) const { return kind == Kind::kObject && object.contains(key); }
  const Json& operator[](const std::string& key) const {
    auto it = object.find(key);
    if (kind != Kind::kObject || it == object.end()) throw std::runtime_error("no key " + key);
    return it->second;
  }
  const Json& operator[](size_t i) const { return array.at(i); }

  // Throws std::runtime_error with the byte offset on malformed input.
  static Json Parse(std::string_view text) {
    Parser p{text};
    Json v = p.Value();
    p.Space();
    if (p.pos != text.size()) p.Error("trailing characters");
    return v;
  }

 private:
  struct Parser {
    std::string_view s;
    size_t pos = 0;

    [[noreturn]] void Error(const std::string& what) {
      throw std::runtime_error("JSON " + what + " at byte " + std::to_string(pos));
    }
    void Space() {
      while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
    }
    void Expect(char c) {
      Space();
      if (pos >= s.size() || s[pos] != c) Error(std::string("expected '") + c + "'");
      ++pos;
    }
    bool Literal(std::string_view word) {
      if (s.substr(pos, word.size()) != word) return false;
      pos += word.size();
      return true;
    }
    std::string String() {
      Expect('"');
      std::string out;
      while (pos < s.size() && s[pos] != '"') {
        char c = s[pos++];
        if (static_cast<unsigned char>(c) < 0x20) Error("control character in string");
        if (c != '\\') {
          out.push_back(c);
          continue;
        }
        if (pos >= s.size()) Error("bad escape");
        char e = s[pos++];
        switch (e) {
          case '"':
          case '\\':
          case '/': out.push_back(e); break;
          case 'n': out.push_back('\n'); break;
          case 't': out.push_back('\t'); break;
          case 'r': out.push_back('\r'); break;
          case 'b': out.push_back('\b'); break;
          case 'f': out.push_back('\f'); break;
          case 'u': {
            if (pos + 4 > s.size()) Error("bad \\u escape");
            out.push_back(static_cast<char>(std::stoi(std::string(s.substr(pos, 4)), nullptr, 16)));
            pos += 4;
            break;
          }
          default: Error("bad escape");
        }
      }
      if (pos >= s.size()) Error("unterminated string");
      ++pos;
      return out;
    }
    Json Value() {
      Space();
      if (pos >= s.size()) Error("unexpected end");
      Json v;
      char c = s[pos];
      if (c == '{') {
        v.kind = Kind::kObject;
        ++pos;
        Space();
        if (pos < s.size() && s[pos] == '}') return ++pos, v;
        for (;;) {
          std::string key = String();
          Expect(':');
          v.object[key] = Value();
          Space();
          if (pos < s.size() && s[pos] == ',') {
            ++pos;
            continue;
          }
          Expect('}');
          return v;
        }
      }
      if (c == '[') {
        v.kind = Kind::kArray;
        ++pos;
        Space();
        if (pos < s.size() && s[pos] == ']') return ++pos, v;
        for (;;) {
          v.array.push_back(Value());
          Space();
          if (pos < s.size() && s[pos] == ',') {
            ++pos;
            continue;
          }
          Expect(']');
          return v;
        }
      }
      if (c == '"') {
        v.kind = Kind::kString;
        v.string = String();
        return v;
      }
      if (Literal("true")) {
        v.kind = Kind::kBool;
        v.boolean = true;
        return v;
      }
      if (Literal("false")) {
        v.kind = Kind::kBool;
        return v;
      }
      if (Literal("null")) return v;
      const char* begin = s.data() + pos;
      char* end = nullptr;
      v.number = std::strtod(begin, &end);
      if (end == begin) Error("unexpected character");
      v.kind = Kind::kNumber;
      pos += static_cast<size_t>(end - begin);
      return v;
    }
  };
};

}  // namespace umbra::recorder::testing
