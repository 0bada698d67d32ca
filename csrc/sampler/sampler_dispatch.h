// Small dispatch helpers for the sampler kernels (index and embedding dtypes).
#pragma once

#include <ATen/ATen.h>

namespace llmhni {
namespace sampler {

template <typename F>
void with_index_type(at::ScalarType s, F&& f) {
  if (s == at::kInt) f(int32_t{}); else f(int64_t{});
}

// float32, float16 or bfloat16 (checked before); float when no embeddings are given.
template <typename F>
void with_float_type(const c10::optional<at::Tensor>& t, F&& f) {
  const auto s = t.has_value() ? t->scalar_type() : at::kFloat;
  if (s == at::kHalf) f(at::Half{});
  else if (s == at::kBFloat16) f(at::BFloat16{});
  else f(float{});
}

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

inline at::Tensor contiguous_or_undefined(const c10::optional<at::Tensor>& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

}  // namespace sampler
}  // namespace llmhni
