#include "available_cores.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

namespace layerskip {

namespace {

// cgroup v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD"), else v1 cfs quota/period: the quota in cores, or 0.
double cgroup_quota_cores() {
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (v2 >> quota >> period) {
    if (quota == "max" || period <= 0) return 0;
    return std::stod(quota) / period;
  }
  std::ifstream v1_quota("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), v1_period("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double quota_us = 0;
  if (v1_quota >> quota_us && v1_period >> period && quota_us > 0 && period > 0) return quota_us / period;
  return 0;
}

int count_available_cores() {
  int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof mask, &mask) == 0) cores = std::max(1, CPU_COUNT(&mask));
  double quota = 0;
  try {
    quota = cgroup_quota_cores();
  } catch (...) {
    quota = 0;  // an unreadable quota file: no quota
  }
  if (quota > 0) cores = std::min(cores, std::max(1, int(std::ceil(quota))));
  return cores;
}

}  // namespace

int available_cores() {
  static const int cores = count_available_cores();
  return cores;
}

}  // namespace layerskip
