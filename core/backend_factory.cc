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

const char* const kNoCudaInBuild =
    "this build of layerskip has no CUDA backend (it was built without nvcc; reinstall with the CUDA toolkit on "
    "PATH, or LAYERSKIP_CUDA=ON to require it)";

Status make_cuda(std::unique_ptr<Backend>* out) {
#ifdef LAYERSKIP_HAVE_CUDA
  return make_cuda_backend(0, out);
#else
  (void)out;
  return Status::error(kNoCudaInBuild);
#endif
}

}  // namespace

CudaProbe probe_cuda_device(int device_index) {
  CudaProbe probe;
#ifdef LAYERSKIP_HAVE_CUDA
  CudaDeviceInfo info;
  Status status = cuda_device_info(device_index, &info);
  probe.usable = status.is_ok();
  probe.reason = status.message();
  probe.name = info.name;
  probe.total_bytes = info.total_memory;
  probe.free_bytes = info.free_memory;
#else
  (void)device_index;
  probe.reason = kNoCudaInBuild;
#endif
  return probe;
}

Status make_backend(const std::string& device, int threads, const std::string& cpu_kernels, BackendChoice* out) {
  if (device == "cpu") {
    LS_RETURN_IF_ERROR(make_cpu_backend(threads, cpu_kernels, &out->backend));
    out->device = "cpu";
    return Status::ok();
  }
  if (device == "cuda") {
    Status cuda = make_cuda(&out->backend);
    if (!cuda.is_ok()) return Status::error("device \"cuda\" is unavailable: " + cuda.message());
    out->device = "cuda";
    return Status::ok();
  }
  if (device == "auto") {
    Status cuda = make_cuda(&out->backend);
    if (cuda.is_ok()) {
      out->device = "cuda";
      return Status::ok();
    }
    LS_RETURN_IF_ERROR(make_cpu_backend(threads, cpu_kernels, &out->backend));
    out->device = "cpu";
    out->fallback_note = cuda.message();
    return Status::ok();
  }
  return Status::error("unknown device \"" + device + "\" (expected cpu, cuda or auto)");
}

}  // namespace layerskip
