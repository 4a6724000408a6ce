// Entry point of layerskip_core_tests; see test_framework.h.
#include <chrono>
#include <cstring>

#include "test_framework.h"

namespace layerskip::testing {

namespace {
int failures_in_current = 0;
bool skipped_current = false;
std::string skip_reason;
}  // namespace

std::vector<Entry>& registry() {
  static std::vector<Entry> entries;
  return entries;
}

void report_failure(const char* file, int line, const std::string& message) {
  failures_in_current++;
  if (failures_in_current <= 10) std::printf("    FAIL %s:%d: %s\n", file, line, message.c_str());
}

void skip(const std::string& reason) {
  skipped_current = true;
  skip_reason = reason;
}

bool current_test_skipped() { return skipped_current; }

}  // namespace layerskip::testing

int main(int argc, char** argv) {
  using namespace layerskip::testing;
  bool bench = false, list = false;
  std::string filter;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--bench") == 0) {
      bench = true;
    } else if (std::strcmp(argv[i], "--list") == 0) {
      list = true;
    } else {
      filter = argv[i];
    }
  }
  int passed = 0, failed = 0, skipped = 0;
  for (const Entry& entry : registry()) {
    if (entry.is_bench != bench) continue;
    if (!filter.empty() && entry.name.find(filter) == std::string::npos) continue;
    if (list) {
      std::printf("%s\n", entry.name.c_str());
      continue;
    }
    failures_in_current = 0;
    skipped_current = false;
    auto start = std::chrono::steady_clock::now();
    entry.body();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (skipped_current) {
      skipped++;
      std::printf("  skip %s (%s)\n", entry.name.c_str(), skip_reason.c_str());
    } else if (failures_in_current == 0) {
      passed++;
      std::printf("  ok   %s (%.2fs)\n", entry.name.c_str(), seconds);
    } else {
      failed++;
      std::printf("  FAIL %s (%d failures)\n", entry.name.c_str(), failures_in_current);
    }
    std::fflush(stdout);
  }
  if (list) return 0;
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
