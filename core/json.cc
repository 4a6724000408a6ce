// Recursive-descent JSON parser; see json.h.
#include "json.h"

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace layerskip {

namespace {
constexpr int kMaxDepth = 64;
}

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& member : members_) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

const char* JsonValue::kind_name(Kind kind) {
  switch (kind) {
    case Kind::Null: return "null";
    case Kind::Bool: return "boolean";
    case Kind::Number: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(const char* text, size_t length, const std::string& what) : text_(text), end_(text + length), what_(what) {}

  Status parse_document(JsonValue* out) {
    LS_RETURN_IF_ERROR(parse_value(out, 0));
    skip_space();
    if (cursor_ != end_) return fail("unexpected characters after the JSON value");
    return Status::ok();
  }

 private:
  Status fail(const std::string& problem) const {
    std::ostringstream message;
    message << what_ << ": invalid JSON at byte " << (cursor_ - text_) << ": " << problem;
    return Status::error(message.str());
  }

  void skip_space() {
    while (cursor_ < end_ && (*cursor_ == ' ' || *cursor_ == '\t' || *cursor_ == '\n' || *cursor_ == '\r')) cursor_++;
  }

  bool consume_literal(const char* literal) {
    size_t length = std::strlen(literal);
    if (size_t(end_ - cursor_) < length || std::memcmp(cursor_, literal, length) != 0) return false;
    cursor_ += length;
    return true;
  }

  Status parse_value(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    skip_space();
    if (cursor_ == end_) return fail("unexpected end of input");
    char c = *cursor_;
    if (c == '{') return parse_object(out, depth);
    if (c == '[') return parse_array(out, depth);
    if (c == '"') {
      out->kind_ = JsonValue::Kind::String;
      return parse_string(&out->string_);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(out);
    if (consume_literal("true")) { out->kind_ = JsonValue::Kind::Bool; out->bool_ = true; return Status::ok(); }
    if (consume_literal("false")) { out->kind_ = JsonValue::Kind::Bool; out->bool_ = false; return Status::ok(); }
    if (consume_literal("null")) { out->kind_ = JsonValue::Kind::Null; return Status::ok(); }
    // Python's json module writes these for non-finite floats; configs occasionally contain them.
    if (consume_literal("NaN")) { out->kind_ = JsonValue::Kind::Number; out->number_ = NAN; return Status::ok(); }
    if (consume_literal("Infinity")) { out->kind_ = JsonValue::Kind::Number; out->number_ = INFINITY; return Status::ok(); }
    return fail(std::string("unexpected character '") + c + "'");
  }

  Status parse_object(JsonValue* out, int depth) {
    out->kind_ = JsonValue::Kind::Object;
    cursor_++;  // '{'
    skip_space();
    if (cursor_ < end_ && *cursor_ == '}') { cursor_++; return Status::ok(); }
    while (true) {
      skip_space();
      if (cursor_ == end_ || *cursor_ != '"') return fail("expected a string key");
      std::string key;
      LS_RETURN_IF_ERROR(parse_string(&key));
      skip_space();
      if (cursor_ == end_ || *cursor_ != ':') return fail("expected ':'");
      cursor_++;
      JsonValue value;
      LS_RETURN_IF_ERROR(parse_value(&value, depth + 1));
      out->members_.emplace_back(std::move(key), std::move(value));
      skip_space();
      if (cursor_ == end_) return fail("unexpected end of input in object");
      if (*cursor_ == ',') { cursor_++; continue; }
      if (*cursor_ == '}') { cursor_++; return Status::ok(); }
      return fail("expected ',' or '}'");
    }
  }

  Status parse_array(JsonValue* out, int depth) {
    out->kind_ = JsonValue::Kind::Array;
    cursor_++;  // '['
    skip_space();
    if (cursor_ < end_ && *cursor_ == ']') { cursor_++; return Status::ok(); }
    while (true) {
      JsonValue value;
      LS_RETURN_IF_ERROR(parse_value(&value, depth + 1));
      out->items_.push_back(std::move(value));
      skip_space();
      if (cursor_ == end_) return fail("unexpected end of input in array");
      if (*cursor_ == ',') { cursor_++; continue; }
      if (*cursor_ == ']') { cursor_++; return Status::ok(); }
      return fail("expected ',' or ']'");
    }
  }

  static void append_utf8(std::string* out, uint32_t code) {
    if (code < 0x80) {
      out->push_back(char(code));
    } else if (code < 0x800) {
      out->push_back(char(0xc0 | (code >> 6)));
      out->push_back(char(0x80 | (code & 0x3f)));
    } else if (code < 0x10000) {
      out->push_back(char(0xe0 | (code >> 12)));
      out->push_back(char(0x80 | ((code >> 6) & 0x3f)));
      out->push_back(char(0x80 | (code & 0x3f)));
    } else {
      out->push_back(char(0xf0 | (code >> 18)));
      out->push_back(char(0x80 | ((code >> 12) & 0x3f)));
      out->push_back(char(0x80 | ((code >> 6) & 0x3f)));
      out->push_back(char(0x80 | (code & 0x3f)));
    }
  }

  Status parse_hex4(uint32_t* out) {
    if (end_ - cursor_ < 4) return fail("truncated \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) {
      char c = *cursor_++;
      value <<= 4;
      if (c >= '0' && c <= '9') value |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') value |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') value |= uint32_t(c - 'A' + 10);
      else return fail("bad \\u escape");
    }
    *out = value;
    return Status::ok();
  }

  Status parse_string(std::string* out) {
    cursor_++;  // opening quote
    while (true) {
      if (cursor_ == end_) return fail("unterminated string");
      char c = *cursor_++;
      if (c == '"') return Status::ok();
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') { out->push_back(c); continue; }
      if (cursor_ == end_) return fail("unterminated escape");
      char escape = *cursor_++;
      switch (escape) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t code = 0;
          LS_RETURN_IF_ERROR(parse_hex4(&code));
          if (code >= 0xd800 && code < 0xdc00 && end_ - cursor_ >= 6 && cursor_[0] == '\\' && cursor_[1] == 'u') {
            cursor_ += 2;
            uint32_t low;
            LS_RETURN_IF_ERROR(parse_hex4(&low));
            if (low < 0xdc00 || low > 0xdfff) return fail("bad surrogate pair");
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, code);
          break;
        }
        default: return fail("bad escape");
      }
    }
  }

  Status parse_number(JsonValue* out) {
    const char* start = cursor_;
    if (*cursor_ == '-') cursor_++;
    while (cursor_ < end_ && ((*cursor_ >= '0' && *cursor_ <= '9') || *cursor_ == '.' || *cursor_ == 'e' ||
                              *cursor_ == 'E' || *cursor_ == '+' || *cursor_ == '-')) {
      cursor_++;
    }
    std::string token(start, cursor_);
    if (token == "-" && consume_literal("Infinity")) {
      out->kind_ = JsonValue::Kind::Number;
      out->number_ = -INFINITY;
      return Status::ok();
    }
    char* parsed_end = nullptr;
    double value = std::strtod(token.c_str(), &parsed_end);
    if (token.empty() || parsed_end != token.c_str() + token.size()) {
      cursor_ = start;
      return fail("bad number '" + token + "'");
    }
    out->kind_ = JsonValue::Kind::Number;
    out->number_ = value;
    return Status::ok();
  }

  const char* text_;
  const char* cursor_ = text_;
  const char* end_;
  const std::string& what_;
};

Status parse_json(const char* text, size_t length, const std::string& what, JsonValue* out) {
  *out = JsonValue();
  JsonParser parser(text, length, what);
  return parser.parse_document(out);
}

Status read_json_file(const std::string& path, JsonValue* out) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::error(path + ": file not found or not readable");
  std::stringstream buffer;
  buffer << file.rdbuf();
  std::string text = buffer.str();
  return parse_json(text.data(), text.size(), path, out);
}

}  // namespace layerskip
