// Argument checks shared by every op. Each op validates its arguments with these
// before any kernel runs, so bad input raises a clear RuntimeError in Python.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <string>

namespace llmhni {

inline void check_index(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kInt || t.scalar_type() == at::kLong, op, ": ", name,
              " must be an int32 or int64 tensor, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == 1, op, ": ", name, " must be 1-D, got shape ", t.sizes());
}

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  const auto s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op, ": ",
              name, " must be float32, float64, float16 or bfloat16, got ", s);
}

inline void check_dim(const at::Tensor& t, int64_t dim, const char* op, const char* name) {
  TORCH_CHECK(t.dim() == dim, op, ": ", name, " must be ", dim, "-D, got shape ", t.sizes());
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op,
                              const char* name_a, const char* name_b) {
  TORCH_CHECK(a.device() == b.device(), op, ": ", name_a, " is on ", a.device(), " but ", name_b,
              " is on ", b.device(), "; move them to one device");
}

inline void check_device_type(const at::Tensor& t, c10::DeviceType type, const char* op,
                              const char* name) {
  TORCH_CHECK(t.device().type() == type, op, ": ", name, " must be on ", c10::DeviceType(type),
              ", got ", t.device());
}

// Value range of an index tensor, in one pass; used for "index out of range" checks.
// (One device->host sync; ops call it once per call, never inside a hot loop.)
inline void check_range(const at::Tensor& idx, int64_t upper, const char* op, const char* name) {
  if (idx.numel() == 0) return;
  auto mm = at::aminmax(idx);
  const int64_t lo = std::get<0>(mm).item<int64_t>();
  const int64_t hi = std::get<1>(mm).item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < upper, op, ": ", name, " has values in [", lo, ", ", hi,
              "] but must lie in [0, ", upper, ")");
}

}  // namespace llmhni
