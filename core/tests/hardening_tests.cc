// The core's side of issue 15: the JSON reader's bounds (depth, value count, UTF-8, lone surrogates), duplicate
// keys (last wins; refused where asked), config.json shape products bounded before they can wrap, special files
// refused without blocking, and checked 64-bit size arithmetic.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "../config.h"
#include "../json.h"
#include "../limits.h"
#include "test_framework.h"

using namespace layerskip;

namespace {

Status parse(const std::string& text, JsonValue* out, DuplicateKeys duplicates = DuplicateKeys::kLastWins) {
  return parse_json(text.data(), text.size(), "test", out, duplicates);
}

bool fails_with(const Status& status, const std::string& fragment) {
  return !status.is_ok() && status.message().find(fragment) != std::string::npos;
}

std::string llama_config(const std::string& extra) {
  return "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 128, "
         "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512" + extra + "}";
}

}  // namespace

TEST(json_duplicate_keys_keep_the_first_position_and_the_last_value) {
  JsonValue value;
  CHECK_OK(parse("{\"a\": 1, \"b\": 2, \"a\": 3}", &value));
  CHECK_EQ(value.members().size(), size_t(2));
  CHECK_EQ(value.members()[0].first, std::string("a"));
  CHECK_EQ(value.find("a")->as_number(), 3.0);
  CHECK(fails_with(parse("{\"a\": 1, \"a\": 3}", &value, DuplicateKeys::kRefuse), "duplicate key \"a\""));
}

TEST(json_bounds_depth_and_value_count) {
  JsonValue value;
  CHECK(fails_with(parse(std::string(100, '[') + std::string(100, ']'), &value), "nesting deeper than 64"));
  std::string many = "[";
  for (uint64_t i = 0; i < kMaxJsonValues; i++) many += "0,";
  many += "0]";
  CHECK(fails_with(parse(many, &value), "more than 1048576 values"));
}

TEST(json_refuses_invalid_utf8_and_lone_surrogates) {
  JsonValue value;
  CHECK(fails_with(parse("{\"\xff\": 1}", &value), "invalid UTF-8"));
  CHECK(fails_with(parse("[\"\xc0\xaf\"]", &value), "invalid UTF-8"));      // overlong '/'
  CHECK(fails_with(parse("[\"\xed\xa0\x80\"]", &value), "invalid UTF-8"));  // an encoded surrogate
  CHECK(fails_with(parse("[\"\\ud800\"]", &value), "lone surrogate"));
  CHECK(fails_with(parse("[\"\\udc00x\"]", &value), "lone surrogate"));
  CHECK_OK(parse("[\"caf\xc3\xa9 \\ud83d\\ude00 \xf0\x9f\x98\x80\"]", &value));
  CHECK_EQ(value.items()[0].as_string(), std::string("caf\xc3\xa9 \xf0\x9f\x98\x80 \xf0\x9f\x98\x80"));
}

TEST(config_bounds_head_dim_and_its_products_before_they_wrap) {
  ModelConfig config;
  JsonValue json;
  CHECK_OK(parse(llama_config(", \"head_dim\": 1073741840"), &json));
  CHECK(fails_with(parse_model_config(json, "config.json", &config), "\"head_dim\" must be an integer in [2, 1024]"));
  CHECK_OK(parse(llama_config(", \"num_attention_heads\": 1024, \"head_dim\": 1024, \"hidden_size\": 1024"), &json));
  CHECK_OK(parse_model_config(json, "config.json", &config));  // the largest heads × head_dim the limits allow
  CHECK_EQ(config.q_dim(), kMaxModelWidth);
  CHECK_OK(parse(llama_config(", \"eos_token_id\": 4294967297"), &json));
  CHECK(fails_with(parse_model_config(json, "config.json", &config), "in the vocabulary [0, 512)"));
  CHECK_OK(parse(llama_config(", \"bos_token_id\": 1, \"eos_token_id\": [2, 511]"), &json));
  CHECK_OK(parse_model_config(json, "config.json", &config));
  CHECK_EQ(config.eos_token_ids.size(), size_t(2));
}

TEST(read_regular_file_refuses_fifos_devices_and_oversized_files) {
  char dir_template[] = "/tmp/layerskip-hardening-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string fifo = dir + "/config.json";
  CHECK(mkfifo(fifo.c_str(), 0600) == 0);
  std::string text;
  CHECK(fails_with(read_regular_file(fifo, kMaxJsonFileBytes, &text), "not a regular file"));  // and did not block
  CHECK(fails_with(read_regular_file("/dev/zero", kMaxJsonFileBytes, &text), "not a regular file"));
  const std::string big = dir + "/big.json";
  FILE* file = std::fopen(big.c_str(), "w");
  CHECK(file != nullptr);
  std::fputs("{}   ", file);
  std::fclose(file);
  CHECK(fails_with(read_regular_file(big, 4, &text), "larger than the"));
  CHECK_OK(read_regular_file(big, 5, &text));
  CHECK_EQ(text, std::string("{}   "));
  unlink(fifo.c_str());
  unlink(big.c_str());
  rmdir(dir.c_str());
}

TEST(checked_arithmetic_reports_wrapping) {
  uint64_t out = 7;
  CHECK(!checked_mul(1ull << 40, 1ull << 24, &out));
  CHECK_EQ(out, uint64_t(7));
  CHECK(checked_mul(1ull << 20, 1ull << 20, &out));
  CHECK_EQ(out, uint64_t(1) << 40);
  CHECK(!checked_add(~0ull, 1, &out));
  CHECK(thread_count_for(100000) <= kThreadsPerCore * int(std::max(1u, std::thread::hardware_concurrency())));
}
