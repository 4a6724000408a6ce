// A small JSON reader for config.json, model.safetensors.index.json and safetensors headers.
// Strict (RFC 8259: UTF-8 text, no lone surrogates), bounded nesting depth and value count (core/limits.h), errors
// carry the byte offset. A repeated object key keeps its first position and its last value, as Python's json (and
// so HF transformers) reads it, unless the caller refuses duplicates.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "limits.h"
#include "status.h"

namespace layerskip {

class JsonValue {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  // Object members in file order (safetensors and configs are small; linear lookup is fine).
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }
  // Member by key, or nullptr when absent (or when this is not an object).
  const JsonValue* find(const std::string& key) const;

  static const char* kind_name(Kind kind);

 private:
  friend class JsonParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

enum class DuplicateKeys { kLastWins, kRefuse };

// Parses `text` (length bytes, not NUL-terminated) into `out`. `what` names the source in error messages.
Status parse_json(const char* text, size_t length, const std::string& what, JsonValue* out,
                  DuplicateKeys duplicates = DuplicateKeys::kLastWins);

// Reads a whole file — a regular file of at most `max_bytes` (else an error naming the file and the limit) — and
// parses it.
Status read_json_file(const std::string& path, JsonValue* out, uint64_t max_bytes = kMaxJsonFileBytes);

// Reads a whole regular file of at most `max_bytes` into `out`: FIFOs, devices and folders are refused before any
// read, so a special file can neither block nor stream forever.
Status read_regular_file(const std::string& path, uint64_t max_bytes, std::string* out);

}  // namespace layerskip
