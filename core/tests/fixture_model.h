// Loads a checkpoint that `npm run fixtures` writes (test/fixtures/models/<name>, relative to the repository root,
// where the tests run) on a one-thread CPU backend (or the given one); marks the running test skipped when it is
// missing.
#pragma once
#include <sys/stat.h>

#include <memory>
#include <string>

#include "../model.h"
#include "test_framework.h"

namespace layerskip::testing {

inline std::unique_ptr<Model> load_fixture_model(const std::string& name,
                                                 std::unique_ptr<Backend> backend = make_cpu_backend(1),
                                                 const ModelLoadOptions& options = ModelLoadOptions()) {
  const std::string dir = "test/fixtures/models/" + name;
  struct stat info;
  if (stat(dir.c_str(), &info) != 0) {
    skip(dir + " missing; run `npm run fixtures` from the repository root");
    return nullptr;
  }
  std::unique_ptr<Model> model;
  Status status = Model::load(dir, std::move(backend), &model, options);
  CHECK_MSG(status.is_ok(), status.message());
  return model;
}

}  // namespace layerskip::testing
