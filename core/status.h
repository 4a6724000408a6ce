// Status: how the core reports failure. Library code never throws across its API, never prints and never exits;
// the binding turns a failed Status into a JavaScript Error carrying this message.
#pragma once
#include <string>
#include <utility>

namespace layerskip {

class Status {
 public:
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }

  bool is_ok() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  Status() = default;
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

}  // namespace layerskip

// Return early from the enclosing function when `expr` yields a failed Status.
#define LS_RETURN_IF_ERROR(expr)            \
  do {                                      \
    ::layerskip::Status status_ = (expr);   \
    if (!status_.is_ok()) return status_;   \
  } while (0)
