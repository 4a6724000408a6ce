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
  std::vector<PendingUpload> uploads;
  LS_RETURN_IF_ERROR(model->resolve_weights(&uploads));
  LS_RETURN_IF_ERROR(model->upload_weights(uploads, options));
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
  auto matrix = [&](const std::string& name, int rows, int cols, Weight* out) -> Status {
    const TensorView* view;
    LS_RETURN_IF_ERROR(find(name, &view));
    if (view->shape.size() != 2 || view->shape[0] != rows || view->shape[1] != cols) {
      return Status::error(view->file + ": tensor \"" + name + "\" has shape " + view->shape_string() +
                           ", expected [" + std::to_string(rows) + ", " + std::to_string(cols) +
                           "] from config.json");
    }
    uploads->push_back({view, rows, cols, out, nullptr});
    return Status::ok();
  };
  auto vector = [&](const std::string& name, int length, float** out) -> Status {
    const TensorView* view;
    LS_RETURN_IF_ERROR(find(name, &view));
    if (view->shape.size() != 1 || view->shape[0] != length) {
      return Status::error(view->file + ": tensor \"" + name + "\" has shape " + view->shape_string() +
                           ", expected [" + std::to_string(length) + "] from config.json");
    }
    uploads->push_back({view, 1, length, nullptr, out});
    return Status::ok();
  };

  LS_RETURN_IF_ERROR(matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size, &weights_.embed_tokens));
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
    LS_RETURN_IF_ERROR(matrix("lm_head.weight", c.vocab_size, c.hidden_size, &weights_.lm_head));
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

// Checks the whole set fits, then uploads tensor by tensor, reporting progress after each.
Status Model::upload_weights(const std::vector<PendingUpload>& uploads, const ModelLoadOptions& options) {
  size_t backend_bytes = 0;
  uint64_t total_bytes = 0;
  for (const PendingUpload& upload : uploads) {
    backend_bytes += upload.matrix ? backend_->weight_upload_bytes(upload.view->dtype, upload.rows, upload.cols)
                                   : size_t(upload.cols) * sizeof(float);
    total_bytes += upload.view->byte_size;
  }
  LS_RETURN_IF_ERROR(backend_->check_weights_fit(backend_bytes));

  uint64_t uploaded_bytes = 0;
  for (const PendingUpload& upload : uploads) {
    if (upload.matrix) {
      LS_RETURN_IF_ERROR(backend_->upload_weight(*upload.view, upload.rows, upload.cols, upload.matrix));
    } else {
      LS_RETURN_IF_ERROR(backend_->upload_vector_f32(*upload.view, upload.vector));
      owned_vectors_.push_back(*upload.vector);
    }
    uploaded_bytes += upload.view->byte_size;
    if (options.on_progress && !options.on_progress(uploaded_bytes, total_bytes)) {
      return Status::error(dir_ + ": loading was cancelled");
    }
  }
  if (config_.tie_word_embeddings) weights_.lm_head = weights_.embed_tokens;
  return Status::ok();
}

size_t Model::weight_bytes_per_layer() const {
  if (weights_.layers.empty()) return 0;
  const LayerWeights& layer = weights_.layers[0];
  size_t total = 0;
  for (const Weight* w : {&layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj, &layer.gate_proj,
                          &layer.up_proj, &layer.down_proj}) {
    total += size_t(w->rows) * w->cols * dtype_size(w->dtype);
  }
  return total;
}

size_t Model::head_weight_bytes() const {
  const Weight& head = weights_.lm_head;
  return size_t(head.rows) * head.cols * dtype_size(head.dtype);
}

size_t Model::weight_bytes_per_token() const {
  return weight_bytes_per_layer() * weights_.layers.size() + head_weight_bytes();
}

}  // namespace layerskip
