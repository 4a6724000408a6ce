// Binding checkpoint tensors to ModelWeights (one clear error per problem), then uploading them to the backend.
#include "model.h"

#include <set>

namespace layerskip {

namespace {

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }

// Tensors some exporters write that carry nothing we need.
bool is_ignorable(const std::string& name) {
  return name.find("rotary_emb.inv_freq") != std::string::npos;
}

}  // namespace

std::vector<std::string> llama_matrix_names(const ModelConfig& config) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int l = 0; l < config.num_layers; l++) {
    for (const char* matrix : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
      names.push_back(layer_prefix(l) + matrix + ".weight");
    }
  }
  if (!config.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

Model::~Model() {
  if (backend_) {
    for (float* vector : owned_vectors_) backend_->free(vector);
  }
}

Status Model::load(const std::string& dir, std::unique_ptr<Backend> backend, std::unique_ptr<Model>* out,
                   const ModelLoadOptions& options) {
  std::unique_ptr<Model> model(new Model());
  model->dir_ = dir;
  model->backend_ = std::move(backend);
  LS_RETURN_IF_ERROR(load_model_config(dir, &model->config_));
  LS_RETURN_IF_ERROR(TensorStore::open_dir(dir, &model->store_));
  const ModelConfig& c = model->config_;
  if (options.quantize != DType::F32 && !is_quantized(options.quantize)) {
    return Status::error(std::string("weights can be quantized to q8 or q4, not ") + dtype_name(options.quantize));
  }
  if (c.quantized_format != DType::F32 && options.quantize != DType::F32 && options.quantize != c.quantized_format) {
    return Status::error(dir + " is a " + dtype_name(c.quantized_format) + " checkpoint (written by `layerskip " +
                         "quantize`); it cannot be loaded as " + dtype_name(options.quantize) +
                         ". Quantize the original checkpoint instead.");
  }
  // A checkpoint quantized on disk loads as stored (its kept head included).
  model->quantize_ = c.quantized_format != DType::F32 ? DType::F32 : options.quantize;
  std::vector<PendingUpload> uploads;
  LS_RETURN_IF_ERROR(model->resolve_weights(&uploads));
  LS_RETURN_IF_ERROR(model->check_draft_head(options));
  LS_RETURN_IF_ERROR(model->upload_weights(uploads, options));
  LS_RETURN_IF_ERROR(model->make_draft_head(options));
  LS_RETURN_IF_ERROR(model->backend_->memory(&model->memory_after_load_));
  *out = std::move(model);
  return Status::ok();
}

// Finds every tensor config.json implies and checks its shape; nothing is uploaded yet.
Status Model::resolve_weights(std::vector<PendingUpload>* uploads) {
  const ModelConfig& c = config_;
  std::set<std::string> used;

  auto find = [&](const std::string& name, const TensorView** view) -> Status {
    *view = store_->find(name);
    if (*view == nullptr) return Status::error(dir_ + ": checkpoint is missing tensor \"" + name + "\"");
    used.insert(name);
    return Status::ok();
  };
  auto check_shape = [&](const TensorView* view, std::vector<int64_t> shape, const std::string& what) -> Status {
    if (view->shape != shape) {
      std::string expected = "[";
      for (size_t i = 0; i < shape.size(); i++) expected += (i ? ", " : "") + std::to_string(shape[i]);
      return Status::error(view->file + ": tensor \"" + view->name + "\" has shape " + view->shape_string() +
                           ", expected " + expected + "] " + what);
    }
    return Status::ok();
  };
  auto check_dtype = [&](const TensorView* view, bool ok, const std::string& expected) -> Status {
    if (ok) return Status::ok();
    return Status::error(view->file + ": tensor \"" + view->name + "\" has dtype " + dtype_name(view->dtype) +
                         ", expected " + expected);
  };
  auto is_float = [](DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; };
  // A matrix stored as is: `name` ("….weight") in F32 / F16 / BF16.
  auto plain_matrix = [&](const std::string& name, int rows, int cols, PendingUpload* upload) -> Status {
    const TensorView* view;
    LS_RETURN_IF_ERROR(find(name, &view));
    LS_RETURN_IF_ERROR(check_shape(view, {rows, cols}, "from config.json"));
    LS_RETURN_IF_ERROR(check_dtype(view, is_float(view->dtype), "F32, F16 or BF16"));
    upload->host.data = view->data;
    upload->host.dtype = view->dtype;
    upload->bytes = view->byte_size;
    return Status::ok();
  };
  // A matrix `layerskip quantize` wrote as planes "….qweight", "….scales" (and "….mins" for q4), see quant.h.
  auto quantized_matrix = [&](const std::string& name, int rows, int cols, DType format,
                              PendingUpload* upload) -> Status {
    const std::string base = name.substr(0, name.size() - std::string(".weight").size());
    const std::string what = std::string("for a ") + dtype_name(format) + " matrix of [" + std::to_string(rows) +
                             ", " + std::to_string(cols) + "] (config.json)";
    if (cols % kQuantBlock != 0) {
      return Status::error(dir_ + ": " + name + " has " + std::to_string(cols) + " columns, not a multiple of " +
                           std::to_string(kQuantBlock) + ": it cannot be " + dtype_name(format));
    }
    const TensorView *qs, *scales, *mins = nullptr;
    LS_RETURN_IF_ERROR(find(base + ".qweight", &qs));
    LS_RETURN_IF_ERROR(find(base + ".scales", &scales));
    const int64_t packed_cols = format == DType::Q4 ? cols / 2 : cols;
    LS_RETURN_IF_ERROR(check_shape(qs, {rows, packed_cols}, what));
    LS_RETURN_IF_ERROR(check_dtype(qs, qs->dtype == (format == DType::Q4 ? DType::U8 : DType::I8),
                                   format == DType::Q4 ? "U8 (two 4-bit values per byte)" : "I8"));
    LS_RETURN_IF_ERROR(check_shape(scales, {rows, cols / kQuantBlock}, what));
    LS_RETURN_IF_ERROR(check_dtype(scales, scales->dtype == DType::F16, "F16"));
    upload->bytes = qs->byte_size + scales->byte_size;
    if (format == DType::Q4) {
      LS_RETURN_IF_ERROR(find(base + ".mins", &mins));
      LS_RETURN_IF_ERROR(check_shape(mins, {rows, cols / kQuantBlock}, what));
      LS_RETURN_IF_ERROR(check_dtype(mins, mins->dtype == DType::F16, "F16"));
      upload->bytes += mins->byte_size;
    }
    upload->host.data = qs->data;
    upload->host.dtype = format;
    upload->host.scales = static_cast<const uint16_t*>(scales->data);
    upload->host.mins = mins ? static_cast<const uint16_t*>(mins->data) : nullptr;
    return Status::ok();
  };
  // `head`: the LM head, or the embedding when it doubles as the head — kept as stored by `quantize --keep-head`.
  auto matrix = [&](const std::string& name, int rows, int cols, Weight* out, bool head = false) -> Status {
    PendingUpload upload;
    upload.name = name;
    upload.host.rows = rows;
    upload.host.cols = cols;
    upload.matrix = out;
    const bool stored_quantized = c.quantized_format != DType::F32 && !(head && c.quantized_keep_head);
    if (stored_quantized) {
      LS_RETURN_IF_ERROR(quantized_matrix(name, rows, cols, c.quantized_format, &upload));
    } else {
      LS_RETURN_IF_ERROR(plain_matrix(name, rows, cols, &upload));
      upload.quantize = quantize_;
    }
    if (head) host_head_ = upload.host;
    uploads->push_back(upload);
    return Status::ok();
  };
  auto vector = [&](const std::string& name, int length, float** out) -> Status {
    const TensorView* view;
    LS_RETURN_IF_ERROR(find(name, &view));
    if (view->shape.size() != 1 || view->shape[0] != length) {
      return Status::error(view->file + ": tensor \"" + name + "\" has shape " + view->shape_string() +
                           ", expected [" + std::to_string(length) + "] from config.json");
    }
    LS_RETURN_IF_ERROR(check_dtype(view, is_float(view->dtype), "F32, F16 or BF16"));
    PendingUpload upload;
    upload.name = name;
    upload.view = view;
    upload.bytes = view->byte_size;
    upload.vector = out;
    uploads->push_back(upload);
    return Status::ok();
  };

  LS_RETURN_IF_ERROR(matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size, &weights_.embed_tokens,
                            /*head=*/c.tie_word_embeddings));
  weights_.layers.resize(c.num_layers);  // never resized again: uploads point into it
  for (int l = 0; l < c.num_layers; l++) {
    std::string p = layer_prefix(l);
    LayerWeights& layer = weights_.layers[l];
    LS_RETURN_IF_ERROR(vector(p + "input_layernorm.weight", c.hidden_size, &layer.attn_norm));
    LS_RETURN_IF_ERROR(matrix(p + "self_attn.q_proj.weight", c.q_dim(), c.hidden_size, &layer.q_proj));
    LS_RETURN_IF_ERROR(matrix(p + "self_attn.k_proj.weight", c.kv_dim(), c.hidden_size, &layer.k_proj));
    LS_RETURN_IF_ERROR(matrix(p + "self_attn.v_proj.weight", c.kv_dim(), c.hidden_size, &layer.v_proj));
    LS_RETURN_IF_ERROR(matrix(p + "self_attn.o_proj.weight", c.hidden_size, c.q_dim(), &layer.o_proj));
    LS_RETURN_IF_ERROR(vector(p + "post_attention_layernorm.weight", c.hidden_size, &layer.ffn_norm));
    LS_RETURN_IF_ERROR(matrix(p + "mlp.gate_proj.weight", c.intermediate_size, c.hidden_size, &layer.gate_proj));
    LS_RETURN_IF_ERROR(matrix(p + "mlp.up_proj.weight", c.intermediate_size, c.hidden_size, &layer.up_proj));
    LS_RETURN_IF_ERROR(matrix(p + "mlp.down_proj.weight", c.hidden_size, c.intermediate_size, &layer.down_proj));
  }
  LS_RETURN_IF_ERROR(vector("model.norm.weight", c.hidden_size, &weights_.final_norm));
  if (c.tie_word_embeddings) {
    if (store_->find("lm_head.weight") != nullptr) used.insert("lm_head.weight");  // some exporters write both
  } else {
    LS_RETURN_IF_ERROR(matrix("lm_head.weight", c.vocab_size, c.hidden_size, &weights_.lm_head, /*head=*/true));
  }

  for (const auto& entry : store_->tensors()) {
    if (used.count(entry.first) == 0 && !is_ignorable(entry.first)) {
      return Status::error(entry.second.file + ": unexpected tensor \"" + entry.first +
                           "\" (not part of a LlamaForCausalLM with " + std::to_string(c.num_layers) +
                           " layers; does config.json match the weights?)");
    }
  }
  return Status::ok();
}

// Checks the whole set fits, then uploads tensor by tensor (quantizing first where asked), reporting progress after
// each.
Status Model::upload_weights(const std::vector<PendingUpload>& uploads, const ModelLoadOptions& options) {
  size_t backend_bytes = 0;
  uint64_t total_bytes = 0;
  for (const PendingUpload& upload : uploads) {
    if (upload.matrix) {
      const DType resident = upload.quantize != DType::F32 ? upload.quantize : upload.host.dtype;
      backend_bytes += backend_->weight_upload_bytes(resident, upload.host.rows, upload.host.cols);
    } else {
      backend_bytes += size_t(upload.view->element_count()) * sizeof(float);
    }
    total_bytes += upload.bytes;
  }
  if (options.draft_head != DType::F32) {
    backend_bytes += backend_->weight_upload_bytes(options.draft_head, config_.vocab_size, config_.hidden_size);
  }
  LS_RETURN_IF_ERROR(backend_->check_weights_fit(backend_bytes));

  uint64_t uploaded_bytes = 0;
  for (const PendingUpload& upload : uploads) {
    if (upload.matrix) {
      LS_RETURN_IF_ERROR(upload_matrix(upload, options));
    } else {
      LS_RETURN_IF_ERROR(backend_->upload_vector_f32(*upload.view, upload.vector));
      owned_vectors_.push_back(*upload.vector);
    }
    uploaded_bytes += upload.bytes;
    if (options.on_progress && !options.on_progress(uploaded_bytes, total_bytes)) {
      return Status::error(dir_ + ": loading was cancelled");
    }
  }
  if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed_tokens;
  return Status::ok();
}

// Source pages that no kernel will read again (quantized, or copied to a device) leave the resident set, so a model
// quantized while loading takes its quantized size in RAM, not that plus the checkpoint.
Status Model::upload_matrix(const PendingUpload& upload, const ModelLoadOptions& options) {
  const bool stored_plain = !is_quantized(upload.host.dtype);
  if (upload.quantize == DType::F32) {
    LS_RETURN_IF_ERROR(backend_->upload_weight(upload.host, upload.name, upload.matrix));
    if (stored_plain && !backend_->reads_host_weights()) release_mapped_pages(upload.host.data, upload.bytes);
    return Status::ok();
  }
  auto quantized = std::make_unique<QuantizedMatrix>();
  LS_RETURN_IF_ERROR(quantize_matrix(upload.host, upload.quantize, upload.name, options.threads, quantized.get()));
  LS_RETURN_IF_ERROR(backend_->upload_weight(quantized->view(), upload.name, upload.matrix));
  if (backend_->reads_host_weights()) quantized_.push_back(std::move(quantized));
  release_mapped_pages(upload.host.data, upload.bytes);
  return Status::ok();
}

// A quantized copy of the head, made from its loaded host form (the mmap, or planes quantized at load).
// A draft head must read fewer bytes than the head it stands in for; checked before anything is uploaded.
Status Model::check_draft_head(const ModelLoadOptions& options) const {
  if (options.draft_head == DType::F32) return Status::ok();
  if (!is_quantized(options.draft_head)) {
    return Status::error(std::string("draft head format must be q8 or q4, not ") + dtype_name(options.draft_head));
  }
  const DType head = !is_quantized(host_head_.dtype) && quantize_ != DType::F32 ? quantize_ : host_head_.dtype;
  if (bits_per_weight(options.draft_head) >= bits_per_weight(head)) {
    return Status::error(dir_ + ": the LM head is " + dtype_name(head) + "; a " + dtype_name(options.draft_head) +
                         " draft head would not be cheaper to read");
  }
  return Status::ok();
}

// The head quantized again for drafts: from its stored form — a checkpoint's bf16 head, or the q8 planes of a q8
// checkpoint (then the draft head quantizes their dequantized values). The backend copy may live on a device.
Status Model::make_draft_head(const ModelLoadOptions& options) {
  if (options.draft_head == DType::F32) return Status::ok();
  const std::string name = config_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  auto quantized = std::make_unique<QuantizedMatrix>();
  LS_RETURN_IF_ERROR(quantize_matrix(host_head_, options.draft_head, name + " (draft head)", options.threads,
                                     quantized.get()));
  LS_RETURN_IF_ERROR(backend_->upload_weight(quantized->view(), name + " (draft head)", &draft_head_));
  if (backend_->reads_host_weights()) quantized_.push_back(std::move(quantized));
  return Status::ok();
}

size_t Model::weight_bytes_per_layer() const {
  if (weights_.layers.empty()) return 0;
  const LayerWeights& layer = weights_.layers[0];
  size_t total = 0;
  for (const Weight* w : {&layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj, &layer.gate_proj,
                          &layer.up_proj, &layer.down_proj}) {
    total += weight_bytes(w->dtype, w->rows, w->cols);
  }
  return total;
}

size_t Model::head_weight_bytes() const {
  const Weight& head = weights_.lm_head;
  return weight_bytes(head.dtype, head.rows, head.cols);
}

size_t Model::draft_head_weight_bytes() const {
  const Weight& head = draft_head();
  return weight_bytes(head.dtype, head.rows, head.cols);
}

size_t Model::weight_bytes_per_token() const {
  return weight_bytes_per_layer() * weights_.layers.size() + head_weight_bytes();
}

}  // namespace layerskip
