#include "fiber.h"

#include <cstdint>

namespace layerskip {
namespace emulator {

#if defined(__x86_64__)

// layerskip_emulator_switch(void** save_sp, void* load_sp): the System V callee-saved registers go on the old
// stack, the stack pointer is swapped, and the same layout is popped from the new one. The FP control words are
// not switched: nothing in the emulator changes rounding modes.
asm(R"(
.text
.globl layerskip_emulator_switch
.type layerskip_emulator_switch,@function
layerskip_emulator_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size layerskip_emulator_switch, .-layerskip_emulator_switch
)");

extern "C" void layerskip_emulator_switch(void** save_stack_pointer, void* load_stack_pointer);

void fiber_prepare(FiberContext* context, char* stack, size_t stack_bytes, void (*entry)()) {
  const uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + stack_bytes) & ~uintptr_t(15);
  uint64_t* slot = reinterpret_cast<uint64_t*>(top);
  *--slot = 0;                                    // entry's "return address": never used
  *--slot = reinterpret_cast<uint64_t>(entry);    // popped by ret; rsp ≡ 8 (mod 16) at entry, as after a call
  for (int i = 0; i < 6; i++) *--slot = 0;        // rbp, rbx, r12 … r15
  context->stack_pointer = slot;
}

void fiber_switch(FiberContext* from, FiberContext* to) {
  layerskip_emulator_switch(&from->stack_pointer, to->stack_pointer);
}

#else

void fiber_prepare(FiberContext* context, char* stack, size_t stack_bytes, void (*entry)()) {
  getcontext(&context->context);
  context->context.uc_stack.ss_sp = stack;
  context->context.uc_stack.ss_size = stack_bytes;
  context->context.uc_link = nullptr;
  makecontext(&context->context, entry, 0);
}

void fiber_switch(FiberContext* from, FiberContext* to) { swapcontext(&from->context, &to->context); }

#endif

}  // namespace emulator
}  // namespace layerskip
