// safetensors parsing: 8-byte little-endian header length, JSON header {name: {dtype, shape, data_offsets}},
// then the data block. See https://github.com/huggingface/safetensors for the format. Held to the format's rules
// as its reference loader is: the header starts with '{' and may be padded only with spaces; names are unique UTF-8;
// "__metadata__" maps strings to strings; the tensors' byte ranges tile the data block exactly — no overlap, no
// hole, no trailing byte (which also catches a header length pointing into the header's padding).
#include "safetensors.h"

#include <algorithm>
#include <cmath>
#include <fcntl.h>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

namespace layerskip {

Status MappedFile::open(const std::string& path, std::unique_ptr<MappedFile>* out) {
  // O_NONBLOCK: opening a FIFO with no writer must not block; fstat then refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::error(path + ": missing file or not readable");
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file (a FIFO, device or folder cannot be a checkpoint file)");
  }
  std::unique_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = size_t(info.st_size);
  if (file->size_ > 0) {
    void* mapping = mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (mapping == MAP_FAILED) {
      ::close(fd);
      return Status::error(path + ": mmap failed");
    }
    file->data_ = static_cast<const uint8_t*>(mapping);
  }
  ::close(fd);
  *out = std::move(file);
  return Status::ok();
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

int64_t TensorView::element_count() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

std::string TensorView::shape_string() const {
  std::ostringstream text;
  text << "[";
  for (size_t i = 0; i < shape.size(); i++) text << (i ? ", " : "") << shape[i];
  text << "]";
  return text.str();
}

namespace {

bool file_exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

// Reads a non-negative integer that must be exact in a double (offsets and dims).
bool as_index(const JsonValue& value, uint64_t* out) {
  if (!value.is_number()) return false;
  double number = value.as_number();
  if (!std::isfinite(number) || number < 0 || number != std::floor(number) || number > 9007199254740992.0) return false;
  *out = uint64_t(number);
  return true;
}

// One tensor's data_offsets.
struct ByteRange {
  uint64_t begin, end;
  const std::string* name;
};

// The ranges, sorted, must cover [0, data_size) exactly once: overlaps would alias two tensors, holes and trailing
// bytes hide data no tensor names (the format forbids all three).
Status check_ranges_tile(const std::string& path, std::vector<ByteRange>* ranges, uint64_t data_size) {
  std::sort(ranges->begin(), ranges->end(), [](const ByteRange& a, const ByteRange& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const std::string* previous = nullptr;
  for (const ByteRange& range : *ranges) {
    if (range.begin < covered) {
      return Status::error(path + ": tensor \"" + *range.name + "\" data_offsets [" + std::to_string(range.begin) +
                           ", " + std::to_string(range.end) + ") overlap tensor \"" + *previous + "\"");
    }
    if (range.begin > covered) {
      return Status::error(path + ": bytes [" + std::to_string(covered) + ", " + std::to_string(range.begin) +
                           ") of the data belong to no tensor (a hole before \"" + *range.name +
                           "\"; safetensors forbids holes)");
    }
    covered = range.end;
    previous = range.name;
  }
  if (covered != data_size) {
    return Status::error(path + ": " + std::to_string(data_size - covered) + " trailing byte(s) after the last " +
                         "tensor's data (the header length or the data_offsets are wrong, or the file is corrupt)");
  }
  return Status::ok();
}

}  // namespace

void release_mapped_pages(const void* data, size_t bytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (uintptr_t(data) + page - 1) / page * page;
  const uintptr_t end = (uintptr_t(data) + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Status TensorStore::add_file(const std::string& path) {
  std::unique_ptr<MappedFile> file;
  LS_RETURN_IF_ERROR(MappedFile::open(path, &file));
  if (file->size() < 8) return Status::error(path + ": truncated safetensors file (" + std::to_string(file->size()) + " bytes)");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; i--) header_size = (header_size << 8) | file->data()[i];
  if (header_size > kMaxSafetensorsHeaderBytes) {
    return Status::error(path + ": safetensors header of " + std::to_string(header_size) +
                         " bytes is larger than the 100 MiB limit (corrupt file?)");
  }
  if (8 + header_size > file->size()) {
    return Status::error(path + ": safetensors header length " + std::to_string(header_size) +
                         " runs past the end of the file (truncated or corrupt)");
  }
  // The JSON object, then only space padding (the format's rule; a length into the padding shows up as a trailing
  // data byte below).
  const char* header_text = reinterpret_cast<const char*>(file->data()) + 8;
  size_t json_length = size_t(header_size);
  while (json_length > 0 && header_text[json_length - 1] == ' ') json_length--;
  if (json_length == 0 || header_text[0] != '{' || header_text[json_length - 1] != '}') {
    return Status::error(path + ": safetensors header is not a JSON object padded with spaces (header length " +
                         std::to_string(header_size) + " is wrong, or the file is corrupt)");
  }
  JsonValue header;
  LS_RETURN_IF_ERROR(parse_json(header_text, json_length, path + " (safetensors header)", &header,
                                DuplicateKeys::kRefuse));
  if (!header.is_object()) return Status::error(path + ": safetensors header is not a JSON object");

  const uint8_t* data_start = file->data() + 8 + header_size;
  uint64_t data_size = file->size() - 8 - header_size;
  std::vector<ByteRange> ranges;  // (tensors) data_offsets, checked to tile [0, data_size) below
  for (const auto& member : header.members()) {
    const std::string& name = member.first;
    if (name == "__metadata__") {
      bool strings = member.second.is_object();
      for (const auto& entry : member.second.members()) strings = strings && entry.second.is_string();
      if (!strings) return Status::error(path + ": safetensors \"__metadata__\" must map strings to strings");
      continue;
    }
    const JsonValue& entry = member.second;
    std::string where = path + ": tensor \"" + name + "\"";
    const JsonValue* dtype_json = entry.find("dtype");
    const JsonValue* shape_json = entry.find("shape");
    const JsonValue* offsets_json = entry.find("data_offsets");
    if (!entry.is_object() || dtype_json == nullptr || shape_json == nullptr || offsets_json == nullptr ||
        !dtype_json->is_string() || !shape_json->is_array() || !offsets_json->is_array() ||
        offsets_json->items().size() != 2) {
      return Status::error(where + " has a malformed header entry (needs dtype, shape, data_offsets)");
    }
    TensorView view;
    view.name = name;
    view.file = path;
    if (!parse_dtype(dtype_json->as_string(), &view.dtype)) {
      return Status::error(where + " has unsupported dtype " + dtype_json->as_string() + " (supported: BF16, F16, F32, and I8 / U8 quantized planes)");
    }
    uint64_t elements = 1;
    bool too_many = false;
    for (const JsonValue& dim : shape_json->items()) {
      uint64_t extent;
      if (!as_index(dim, &extent)) return Status::error(where + " has an invalid shape");
      view.shape.push_back(int64_t(extent));
      too_many = too_many || !checked_mul(elements, extent, &elements) || elements > kMaxTensorElements;
    }
    if (too_many) {
      return Status::error(where + " has shape " + view.shape_string() + ": more elements than the limit of " +
                           std::to_string(kMaxTensorElements));
    }
    uint64_t needed_bytes = elements * dtype_size(view.dtype);  // ≤ 2^42 × 4: no overflow
    uint64_t begin, end;
    if (!as_index(offsets_json->items()[0], &begin) || !as_index(offsets_json->items()[1], &end) || end < begin) {
      return Status::error(where + " has invalid data_offsets");
    }
    if (end > data_size) {
      return Status::error(where + " data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                           ") run past the end of the data (" + std::to_string(data_size) +
                           " bytes): truncated or corrupt file");
    }
    if (end - begin != needed_bytes) {
      return Status::error(where + " occupies " + std::to_string(end - begin) + " bytes but shape " +
                           view.shape_string() + " of " + dtype_name(view.dtype) + " needs " +
                           std::to_string(needed_bytes));
    }
    ranges.push_back({begin, end, &member.first});
    view.data = data_start + begin;
    view.byte_size = size_t(end - begin);
    if (tensors_.count(name)) return Status::error(where + " appears in more than one file");
    tensors_.emplace(name, std::move(view));
  }
  LS_RETURN_IF_ERROR(check_ranges_tile(path, &ranges, data_size));
  files_.push_back(std::move(file));
  return Status::ok();
}

Status TensorStore::open_file(const std::string& path, std::unique_ptr<TensorStore>* out) {
  std::unique_ptr<TensorStore> store(new TensorStore());
  LS_RETURN_IF_ERROR(store->add_file(path));
  *out = std::move(store);
  return Status::ok();
}

Status TensorStore::open_dir(const std::string& dir, std::unique_ptr<TensorStore>* out) {
  std::string single = dir + "/model.safetensors";
  std::string index_path = dir + "/model.safetensors.index.json";
  std::unique_ptr<TensorStore> store(new TensorStore());
  if (file_exists(index_path)) {
    JsonValue index;
    LS_RETURN_IF_ERROR(read_json_file(index_path, &index));
    const JsonValue* weight_map = index.find("weight_map");
    if (weight_map == nullptr || !weight_map->is_object()) {
      return Status::error(index_path + ": missing \"weight_map\" object");
    }
    std::vector<std::string> shards;
    for (const auto& member : weight_map->members()) {
      if (!member.second.is_string()) return Status::error(index_path + ": weight_map values must be file names");
      const std::string& shard = member.second.as_string();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) {
        return Status::error(index_path + ": shard name \"" + shard + "\" must be a plain file name");
      }
      bool seen = false;
      for (const std::string& known : shards) seen = seen || known == shard;
      if (!seen) shards.push_back(shard);
    }
    for (const std::string& shard : shards) {
      std::string shard_path = dir + "/" + shard;
      if (!file_exists(shard_path)) {
        return Status::error(index_path + " names shard \"" + shard + "\" but " + shard_path + " is missing");
      }
      LS_RETURN_IF_ERROR(store->add_file(shard_path));
    }
    // Every tensor the index promises must be in the shard it names.
    for (const auto& member : weight_map->members()) {
      const TensorView* view = store->find(member.first);
      std::string expected = dir + "/" + member.second.as_string();
      if (view == nullptr || view->file != expected) {
        return Status::error(index_path + ": tensor \"" + member.first + "\" is not in " + expected);
      }
    }
  } else if (file_exists(single)) {
    LS_RETURN_IF_ERROR(store->add_file(single));
  } else {
    return Status::error(dir + ": no model.safetensors or model.safetensors.index.json found");
  }
  *out = std::move(store);
  return Status::ok();
}

const TensorView* TensorStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

size_t TensorStore::total_bytes() const {
  size_t total = 0;
  for (const auto& entry : tensors_) total += entry.second.byte_size;
  return total;
}

}  // namespace layerskip
