// A minimal test registry for the core executable: TEST(name) { CHECK(...); } and a main that runs them.
// `layerskip_core_tests [filter]` runs tests whose name contains filter; `layerskip_core_tests --bench [filter]`
// runs BENCH(name) entries instead; `--list` prints the selected names instead of running them.
// The last line is "N passed, N failed".
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace layerskip::testing {

struct Entry {
  std::string name;
  std::function<void()> body;
  bool is_bench;
};

std::vector<Entry>& registry();
// Marks the running test failed and prints where.
void report_failure(const char* file, int line, const std::string& message);
// Marks the running test skipped with a visible reason (e.g. no GPU).
void skip(const std::string& reason);
bool current_test_skipped();

struct Registrar {
  Registrar(const char* name, std::function<void()> body, bool is_bench) {
    registry().push_back({name, std::move(body), is_bench});
  }
};

}  // namespace layerskip::testing

#define LS_TEST_CONCAT_INNER(a, b) a##b
#define LS_TEST_CONCAT(a, b) LS_TEST_CONCAT_INNER(a, b)

#define TEST(name)                                                                                   \
  static void LS_TEST_CONCAT(test_, name)();                                                         \
  static ::layerskip::testing::Registrar LS_TEST_CONCAT(registrar_, name)(#name, LS_TEST_CONCAT(test_, name), false); \
  static void LS_TEST_CONCAT(test_, name)()

#define BENCH(name)                                                                                  \
  static void LS_TEST_CONCAT(bench_, name)();                                                        \
  static ::layerskip::testing::Registrar LS_TEST_CONCAT(bench_registrar_, name)(#name, LS_TEST_CONCAT(bench_, name), true); \
  static void LS_TEST_CONCAT(bench_, name)()

#define CHECK(condition)                                                                             \
  do {                                                                                               \
    if (!(condition)) ::layerskip::testing::report_failure(__FILE__, __LINE__, "CHECK(" #condition ")"); \
  } while (0)

#define CHECK_MSG(condition, message)                                                                \
  do {                                                                                               \
    if (!(condition)) {                                                                              \
      std::ostringstream check_stream_;                                                              \
      check_stream_ << message;                                                                      \
      ::layerskip::testing::report_failure(__FILE__, __LINE__, check_stream_.str());                 \
    }                                                                                                \
  } while (0)

// Both operands are printed on failure (and evaluated twice: keep them free of side effects).
#define CHECK_EQ(actual, expected) \
  CHECK_MSG((actual) == (expected), "CHECK_EQ(" #actual ", " #expected "): " << (actual) << " != " << (expected))

#define CHECK_OK(expr)                                                                               \
  do {                                                                                               \
    ::layerskip::Status check_status_ = (expr);                                                      \
    if (!check_status_.is_ok()) ::layerskip::testing::report_failure(__FILE__, __LINE__, check_status_.message()); \
  } while (0)
