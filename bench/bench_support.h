// Helpers shared by the benchmark programs in bench/: resident memory and CPU time of this
// process. Linux-only (/proc), as the benchmarks are.
#pragma once

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

namespace informerd::bench {

// The resident set now, from /proc/self/statm.
inline std::size_t ResidentBytes() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long size = 0;
  unsigned long resident = 0;
  if (std::fscanf(statm, "%lu %lu", &size, &resident) != 2) resident = 0;
  std::fclose(statm);
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// The resident set after returning free heap memory to the kernel: what the live data costs.
inline std::size_t TrimmedResidentBytes() {
  malloc_trim(0);
  return ResidentBytes();
}

// VmHWM (peak resident set) from /proc/self/status, in bytes; 0 if unavailable.
inline std::size_t PeakResidentBytes() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return 0;
  char line[256];
  std::size_t kib = 0;
  while (std::fgets(line, sizeof line, status) != nullptr) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) {
      std::sscanf(line + 6, "%zu", &kib);
      break;
    }
  }
  std::fclose(status);
  return kib * 1024;
}

// Resets VmHWM to the current resident set (Linux >= 4.0: "5" > /proc/self/clear_refs).
inline bool ResetPeakResident() {
  std::FILE* clear = std::fopen("/proc/self/clear_refs", "w");
  if (clear == nullptr) return false;
  const bool ok = std::fputs("5", clear) >= 0;
  return std::fclose(clear) == 0 && ok;
}

// User + system CPU time this process has used, in seconds (all threads).
inline double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace informerd::bench
