// Streaming quantizer: the header is computed from shapes alone, then tensors are quantized one at a time (each
// across all threads) and appended, so memory holds one matrix's planes at most.
#include "quantize_checkpoint.h"

#include <cstdio>
#include <memory>
#include <set>
#include <vector>

#include "config.h"
#include "model.h"
#include "quant.h"
#include "safetensors.h"

namespace layerskip {

namespace {

// A tensor of the output file: one plane of a quantized matrix, or a tensor copied as stored.
struct OutputTensor {
  std::string name;
  const char* dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

// Whether `name` is a matrix the loader reads as quantized (llama_matrix_names), given the head policy.
bool quantizes(const std::string& name, const TensorView& view, const std::set<std::string>& matrices,
               const ModelConfig& config, bool keep_head) {
  if (view.shape.size() != 2 || matrices.count(name) == 0) return false;
  const bool is_head = name == "lm_head.weight" || (config.tie_word_embeddings && name == "model.embed_tokens.weight");
  return !(is_head && keep_head);
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", c);
      out += escape;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string header_json(const std::vector<OutputTensor>& tensors, DType format) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\",\"layerskip_quantization\":\"";
  json += dtype_name(format);
  json += "\"}";
  uint64_t offset = 0;
  for (const OutputTensor& tensor : tensors) {
    json += "," + json_string(tensor.name) + ":{\"dtype\":\"" + tensor.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < tensor.shape.size(); i++) json += (i ? "," : "") + std::to_string(tensor.shape[i]);
    json += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + tensor.bytes) + "]}";
    offset += tensor.bytes;
  }
  json += "}";
  while (json.size() % 8 != 0) json += ' ';  // keeps the data 8-byte aligned, as the format recommends
  return json;
}

class OutputFile {
 public:
  ~OutputFile() {
    if (file_) std::fclose(file_);
  }
  Status open(const std::string& path) {
    path_ = path;
    file_ = std::fopen(path.c_str(), "wbx");  // x: never overwrite
    if (!file_) return Status::error(path + ": cannot create the output file (does it exist already?)");
    return Status::ok();
  }
  Status write(const void* data, size_t bytes) {
    if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) {
      return Status::error(path_ + ": write failed (disk full?)");
    }
    written_ += bytes;
    return Status::ok();
  }
  Status close() {
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
    return ok ? Status::ok() : Status::error(path_ + ": closing the output file failed (disk full?)");
  }
  uint64_t written() const { return written_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t written_ = 0;
};

}  // namespace

Status quantize_checkpoint(const std::string& dir, const std::string& out_path, const QuantizeCheckpointOptions& options,
                           QuantizeCheckpointReport* report) {
  *report = QuantizeCheckpointReport();
  if (!is_quantized(options.format)) return Status::error("the quantized type must be q8 or q4");
  ModelConfig config;
  LS_RETURN_IF_ERROR(load_model_config(dir, &config));
  if (config.quantized_format != DType::F32) {
    return Status::error(dir + " is already quantized (" + dtype_name(config.quantized_format) +
                         "); quantize the original checkpoint instead");
  }
  std::unique_ptr<TensorStore> store;
  LS_RETURN_IF_ERROR(TensorStore::open_dir(dir, &store));

  // The output layout, from shapes alone.
  const std::vector<std::string> names = llama_matrix_names(config);
  const std::set<std::string> matrices(names.begin(), names.end());
  std::vector<OutputTensor> outputs;
  std::vector<const TensorView*> sources;  // per output tensor: its source (planes of one matrix share it)
  uint64_t total_bytes = 0;
  for (const auto& [name, view] : store->tensors()) {
    if (config.tie_word_embeddings && name == "lm_head.weight") continue;  // an unused copy some exporters write
    total_bytes += view.byte_size;
    if (!quantizes(name, view, matrices, config, options.keep_head)) {
      outputs.push_back({name, dtype_name(view.dtype), view.shape, view.byte_size});
      sources.push_back(&view);
      continue;
    }
    const int rows = int(view.shape[0]), cols = int(view.shape[1]);
    if (cols % kQuantBlock != 0) {
      return Status::error(view.file + ": cannot quantize tensor \"" + name + "\": its " + std::to_string(cols) +
                           " columns are not a multiple of the " + std::to_string(kQuantBlock) + "-column block");
    }
    if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16) {
      return Status::error(view.file + ": tensor \"" + name + "\" has dtype " + dtype_name(view.dtype) +
                           "; only F32, F16 and BF16 matrices can be quantized");
    }
    const std::string base = name.substr(0, name.size() - std::string(".weight").size());
    const int64_t packed_cols = options.format == DType::Q4 ? cols / 2 : cols;
    outputs.push_back({base + ".qweight", options.format == DType::Q4 ? "U8" : "I8", {rows, packed_cols},
                       quant_qs_bytes(options.format, rows, cols)});
    sources.push_back(&view);
    outputs.push_back({base + ".scales", "F16", {rows, cols / kQuantBlock}, quant_scale_count(rows, cols) * 2});
    sources.push_back(&view);
    if (options.format == DType::Q4) {
      outputs.push_back({base + ".mins", "F16", {rows, cols / kQuantBlock}, quant_scale_count(rows, cols) * 2});
      sources.push_back(&view);
    }
  }

  OutputFile file;
  LS_RETURN_IF_ERROR(file.open(out_path));
  const std::string header = header_json(outputs, options.format);
  uint8_t length[8];
  for (int i = 0; i < 8; i++) length[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  LS_RETURN_IF_ERROR(file.write(length, 8));
  LS_RETURN_IF_ERROR(file.write(header.data(), header.size()));

  uint64_t done_bytes = 0;
  for (size_t i = 0; i < outputs.size();) {
    const TensorView& view = *sources[i];
    if (outputs[i].name == view.name) {  // copied as stored
      LS_RETURN_IF_ERROR(file.write(view.data, view.byte_size));
      i++;
    } else {
      const Weight source{view.data, view.dtype, int(view.shape[0]), int(view.shape[1])};
      QuantizedMatrix quantized;
      Status status = quantize_matrix(source, options.format, view.name, options.threads, &quantized);
      if (!status.is_ok()) return Status::error(view.file + ": " + status.message());
      LS_RETURN_IF_ERROR(file.write(quantized.qs.data(), quantized.qs.size()));
      LS_RETURN_IF_ERROR(file.write(quantized.scales.data(), quantized.scales.size() * 2));
      if (options.format == DType::Q4) LS_RETURN_IF_ERROR(file.write(quantized.mins.data(), quantized.mins.size() * 2));
      i += options.format == DType::Q4 ? 3 : 2;
      report->quantized++;
    }
    report->tensors++;
    done_bytes += view.byte_size;
    if (options.on_progress && !options.on_progress(done_bytes, total_bytes)) {
      return Status::error("quantizing was cancelled");
    }
  }
  LS_RETURN_IF_ERROR(file.close());
  report->input_bytes = total_bytes;
  report->output_bytes = file.written();
  return Status::ok();
}

}  // namespace layerskip
