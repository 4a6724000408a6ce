#include "backend_factory.h"

#ifdef LAYERSKIP_HAVE_CUDA
#include "../cuda/cuda_backend.h"
#endif

namespace layerskip {

bool cuda_compiled_in() {
#ifdef LAYERSKIP_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

Status make_cuda(std::unique_ptr<Backend>* out) {
#ifdef LAYERSKIP_HAVE_CUDA
  return make_cuda_backend(0, out);
#else
  (void)out;
  return Status::error("this build of layerskip has no CUDA backend (it was built without nvcc; reinstall with "
                       "the CUDA toolkit on PATH, or LAYERSKIP_CUDA=ON to require it)");
#endif
}

}  // namespace

Status make_backend(const std::string& device, int threads, BackendChoice* out) {
  if (device == "cpu") {
    out->backend = make_cpu_backend(threads);
    out->device = "cpu";
    return Status::ok();
  }
  if (device == "cuda") {
    LS_RETURN_IF_ERROR(make_cuda(&out->backend));
    out->device = "cuda";
    return Status::ok();
  }
  if (device == "auto") {
    Status cuda = make_cuda(&out->backend);
    if (cuda.is_ok()) {
      out->device = "cuda";
      return Status::ok();
    }
    out->backend = make_cpu_backend(threads);
    out->device = "cpu";
    out->fallback_note = cuda.message();
    return Status::ok();
  }
  return Status::error("unknown device \"" + device + "\" (expected cpu, cuda or auto)");
}

}  // namespace layerskip
