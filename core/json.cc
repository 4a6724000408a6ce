// Recursive-descent JSON parser; see json.h.
#include "json.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <fcntl.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>

namespace layerskip {

namespace {

// Length of the well-formed UTF-8 sequence at `p` (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF), 0 if none.
size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) {
  const unsigned char lead = p[0];
  if (lead < 0x80) return 1;
  size_t length;
  unsigned char low = 0x80, high = 0xbf;  // bounds of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (size_t(end - p) < length || p[1] < low || p[1] > high) return 0;
  for (size_t i = 2; i < length; i++) {
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  }
  return length;
}

}  // namespace

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
  JsonParser(const char* text, size_t length, const std::string& what, DuplicateKeys duplicates)
      : text_(text), end_(text + length), what_(what), duplicates_(duplicates) {}

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
    if (depth > kMaxJsonDepth) return fail("nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    if (++values_ > kMaxJsonValues) {
      return fail("more than " + std::to_string(kMaxJsonValues) + " values (the limit of layerskip's JSON reader)");
    }
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
    std::unordered_map<std::string, size_t> positions;  // key → index in members_
    while (true) {
      skip_space();
      if (cursor_ == end_ || *cursor_ != '"') return fail("expected a string key");
      const char* key_start = cursor_;
      std::string key;
      LS_RETURN_IF_ERROR(parse_string(&key));
      skip_space();
      if (cursor_ == end_ || *cursor_ != ':') return fail("expected ':'");
      cursor_++;
      JsonValue value;
      LS_RETURN_IF_ERROR(parse_value(&value, depth + 1));
      auto known = positions.find(key);
      if (known == positions.end()) {
        positions.emplace(key, out->members_.size());
        out->members_.emplace_back(std::move(key), std::move(value));
      } else if (duplicates_ == DuplicateKeys::kLastWins) {
        out->members_[known->second].second = std::move(value);
      } else {
        cursor_ = key_start;
        return fail("duplicate key \"" + key + "\"");
      }
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
      if (static_cast<unsigned char>(c) >= 0x80) {
        const unsigned char* at = reinterpret_cast<const unsigned char*>(cursor_ - 1);
        const size_t length = utf8_sequence_length(at, reinterpret_cast<const unsigned char*>(end_));
        if (length == 0) {
          cursor_--;
          return fail("invalid UTF-8 in string");
        }
        out->append(cursor_ - 1, length);
        cursor_ += length - 1;
        continue;
      }
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
          if (code >= 0xdc00 && code <= 0xdfff) return fail("lone surrogate in \\u escape");
          if (code >= 0xd800 && code < 0xdc00) {
            if (end_ - cursor_ < 6 || cursor_[0] != '\\' || cursor_[1] != 'u') return fail("lone surrogate in \\u escape");
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
  DuplicateKeys duplicates_;
  uint64_t values_ = 0;  // values parsed so far, against kMaxJsonValues
};

Status parse_json(const char* text, size_t length, const std::string& what, JsonValue* out,
                  DuplicateKeys duplicates) {
  *out = JsonValue();
  JsonParser parser(text, length, what, duplicates);
  return parser.parse_document(out);
}

Status read_regular_file(const std::string& path, uint64_t max_bytes, std::string* out) {
  // O_NONBLOCK: opening a FIFO with no writer must not block; fstat then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::error(path + ": file not found or not readable");
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file (a FIFO, device or folder cannot be read as a checkpoint file)");
  }
  if (uint64_t(info.st_size) > max_bytes) {
    ::close(fd);
    return Status::error(path + ": " + std::to_string(info.st_size) + " bytes is larger than the " +
                         std::to_string(max_bytes >> 20) + " MiB limit for this file");
  }
  // Reads at most max_bytes + 1 bytes, so a file that grows meanwhile (or a /proc file of stated size 0) is caught.
  out->assign(size_t(info.st_size) + 1, '\0');
  size_t done = 0;
  while (true) {
    if (done == out->size()) {
      if (done > max_bytes) break;
      out->resize(size_t(std::min<uint64_t>(max_bytes + 1, 2 * uint64_t(done) + 4096)));
    }
    const ssize_t got = ::read(fd, &(*out)[done], out->size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      ::close(fd);
      return Status::error(path + ": read failed: " + std::strerror(errno));
    }
    if (got == 0) break;
    done += size_t(got);
  }
  ::close(fd);
  if (done > max_bytes) {
    return Status::error(path + ": larger than the " + std::to_string(max_bytes >> 20) +
                         " MiB limit for this file (it grew while being read)");
  }
  out->resize(done);
  return Status::ok();
}

Status read_json_file(const std::string& path, JsonValue* out, uint64_t max_bytes) {
  std::string text;
  LS_RETURN_IF_ERROR(read_regular_file(path, max_bytes, &text));
  return parse_json(text.data(), text.size(), path, out);
}

}  // namespace layerskip
