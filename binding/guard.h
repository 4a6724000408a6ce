// guarded(): runs core work on a binding path, turning any C++ exception that escapes it (std::bad_alloc,
// std::length_error, …) into a failed Status naming the operation. Every AsyncWorker's Execute() runs its work
// through it; synchronous methods are covered by NODE_ADDON_API_CPP_EXCEPTIONS_ALL (CMakeLists.txt, binding.gyp),
// which makes node-addon-api convert any exception into a JS Error. Together no C++ exception reaches N-API
// unconverted, so a hostile checkpoint or option can fail a call but never abort the process.
#pragma once
#include <exception>
#include <new>
#include <string>

#include "../core/status.h"

namespace layerskip::binding {

template <typename Work>
Status guarded(const char* operation, Work&& work) {
  try {
    return work();
  } catch (const std::bad_alloc&) {
    return Status::error(std::string(operation) + ": out of memory");
  } catch (const std::exception& error) {
    return Status::error(std::string(operation) + ": " + error.what());
  } catch (...) {
    return Status::error(std::string(operation) + ": unexpected native exception");
  }
}

}  // namespace layerskip::binding
