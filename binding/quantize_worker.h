// quantizeCheckpoint(dir, outPath, { type, keepHead, threads, onProgress }) → Promise<report>: core/quantize_checkpoint.h
// off the JS thread, with progress like NativeModel.load's.
#pragma once
#include <napi.h>

namespace layerskip::binding {

Napi::Value QuantizeCheckpoint(const Napi::CallbackInfo& info);

}  // namespace layerskip::binding
