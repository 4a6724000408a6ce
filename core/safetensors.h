// Memory-mapped safetensors checkpoints: one model.safetensors, or shards listed by model.safetensors.index.json.
// Tensors are views into the mapping — never copied — and every header field is validated against the file.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "limits.h"
#include "status.h"

namespace layerskip {

// A read-only memory mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  static Status open(const std::string& path, std::unique_ptr<MappedFile>* out);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Drops the whole pages inside [data, data + bytes) of a read-only file mapping from the process's resident set
// (for tensors already copied or quantized elsewhere); touching them again re-reads the file.
void release_mapped_pages(const void* data, size_t bytes);

// One tensor inside a mapped file.
struct TensorView {
  std::string name;
  std::string file;              // path of the file holding it, for error messages
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;    // points into the mapping
  size_t byte_size = 0;

  int64_t element_count() const;
  std::string shape_string() const;  // "[2048, 128256]"
};

// All tensors of a checkpoint folder, keeping their files mapped.
class TensorStore {
 public:
  // Opens `dir`/model.safetensors, or the shards named by `dir`/model.safetensors.index.json.
  static Status open_dir(const std::string& dir, std::unique_ptr<TensorStore>* out);
  // Opens a single safetensors file.
  static Status open_file(const std::string& path, std::unique_ptr<TensorStore>* out);

  const TensorView* find(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // Total bytes of tensor data across files.
  size_t total_bytes() const;

 private:
  Status add_file(const std::string& path);
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace layerskip
