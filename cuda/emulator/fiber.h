// Minimal stackful fibers for the emulator: one per emulated CUDA thread, switched only by the scheduler.
// x86-64 saves just the callee-saved registers (no signal mask system call, unlike
// swapcontext, which made a 128k-thread launch spend seconds in the kernel); other machines use ucontext.
#pragma once
#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace layerskip {
namespace emulator {

struct FiberContext {
#if defined(__x86_64__)
  void* stack_pointer = nullptr;
#else
  ucontext_t context;
#endif
};

// Makes `context` start `entry` on the given stack at its first switch. `entry` must never return: it ends by
// switching away for good.
void fiber_prepare(FiberContext* context, char* stack, size_t stack_bytes, void (*entry)());
// Saves the running state into `from` and resumes `to`.
void fiber_switch(FiberContext* from, FiberContext* to);

}  // namespace emulator
}  // namespace layerskip
