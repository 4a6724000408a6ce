// The cores this process may actually use: the CPUs in its affinity mask, bounded by a cgroup CPU quota (containers,
// `docker --cpus`), not the machine's total — the default thread count, so workers never outnumber the cores and
// spin against each other. Computed once.
#pragma once

namespace layerskip {

int available_cores();

}  // namespace layerskip
