// Type dispatch and small tensor helpers shared by every family's host code, CPU and CUDA.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <type_traits>

namespace llmhni {

// Index tensors are int32 or int64 (checked before): f(int32_t{}) or f(int64_t{}).
template <typename F>
void with_index_type(at::ScalarType s, F&& f) {
  if (s == at::kInt) f(int32_t{});
  else f(int64_t{});
}

// Accumulation type: double for double, float for float, half and bfloat16.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

inline at::ScalarType acc_type(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// Embedding tensors are float32, float16 or bfloat16 (checked before); float when absent.
template <typename F>
void with_float_type(const at::Tensor& t, F&& f) {
  const auto s = t.defined() ? t.scalar_type() : at::kFloat;
  if (s == at::kHalf) f(at::Half{});
  else if (s == at::kBFloat16) f(at::BFloat16{});
  else f(float{});
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

inline at::Tensor contiguous_or_undefined(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

}  // namespace llmhni
