// C++ unit tests of the graph ops, called through the dispatcher exactly as
// torch.ops.llmhni.* does (run by ctest; see CMakeLists.txt).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace {

int failures = 0;

#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

using OptT = std::optional<at::Tensor>;

c10::TypedOperatorHandle<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                         int64_t, int64_t)>
norm_adj_op() {
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow("llmhni::bipartite_norm_adj", "")
      .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, int64_t, int64_t)>();
}

auto spmm_op() {
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow("llmhni::spmm", "")
      .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const OptT&, const at::Tensor&, const OptT&,
                        const OptT&, const OptT&)>();
}

auto propagate_op() {
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow("llmhni::lightgcn_propagate", "")
      .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const OptT&, const at::Tensor&, at::ArrayRef<double>,
                        const OptT&, const OptT&, const OptT&)>();
}

// Dense D^-1/2 A D^-1/2 of a small bipartite graph, the oracle.
at::Tensor dense_norm_adj(const at::Tensor& u, const at::Tensor& i, int64_t nu, int64_t ni) {
  const int64_t n = nu + ni;
  auto A = at::zeros({n, n}, at::kDouble);
  auto ua = u.accessor<int64_t, 1>();
  auto ia = i.accessor<int64_t, 1>();
  for (int64_t e = 0; e < u.numel(); ++e) {
    A[ua[e]][nu + ia[e]] = 1.0;
    A[nu + ia[e]][ua[e]] = 1.0;
  }
  auto deg = A.sum(1).clamp_min(1.0);
  auto dinv = deg.rsqrt();
  return dinv.unsqueeze(1) * A * dinv.unsqueeze(0);
}

void test_norm_adj_and_spmm() {
  at::manual_seed(3);
  const int64_t nu = 37, ni = 23;
  auto u = at::randint(0, nu, {400}, at::kLong);
  auto i = at::randint(0, ni, {400}, at::kLong);
  auto [rowptr, col, value] = norm_adj_op().call(u, i, nu, ni);
  EXPECT(rowptr.scalar_type() == at::kInt && col.scalar_type() == at::kInt);
  EXPECT(rowptr.numel() == nu + ni + 1);
  auto dense = dense_norm_adj(u, i, nu, ni);
  // rebuild the dense matrix from the CSR
  auto got = at::zeros({nu + ni, nu + ni}, at::kDouble);
  auto rp = rowptr.accessor<int32_t, 1>();
  auto cc = col.accessor<int32_t, 1>();
  auto vv = value.accessor<float, 1>();
  for (int64_t r = 0; r < nu + ni; ++r)
    for (int64_t e = rp[r]; e < rp[r + 1]; ++e) {
      if (e > rp[r]) EXPECT(cc[e - 1] < cc[e]);  // sorted, no duplicates
      got[r][cc[e]] = static_cast<double>(vv[e]);
    }
  EXPECT(at::allclose(got, dense, 1e-6, 1e-7));
  for (int64_t d : {1, 32, 64, 100, 128}) {
    auto x = at::randn({nu + ni, d}, at::kFloat);
    auto y = spmm_op().call(rowptr, col, value, x, std::nullopt, std::nullopt, std::nullopt);
    EXPECT(at::allclose(y.to(at::kDouble), at::mm(dense, x.to(at::kDouble)), 1e-4, 1e-5));
  }
  // LightGCN layer mean, 3 layers
  auto x = at::randn({nu + ni, 64}, at::kDouble);
  auto y = propagate_op().call(rowptr, col, value, x, {0.25, 0.25, 0.25, 0.25}, std::nullopt, std::nullopt,
                               std::nullopt);
  auto want = x.clone();
  auto h = x;
  for (int k = 0; k < 3; ++k) {
    h = at::mm(dense, h);
    want = want + h;
  }
  EXPECT(at::allclose(y, want * 0.25, 1e-5, 1e-6));
}

void test_clear_errors() {
  auto u = at::tensor({0, 1, 2}, at::kLong);
  auto i = at::tensor({0, 1, 9}, at::kLong);
  bool raised = false;
  try {
    norm_adj_op().call(u, i, 3, 5);
  } catch (const c10::Error& e) {
    raised = std::string(e.what_without_backtrace()).find("bipartite_norm_adj: items has values in") != std::string::npos;
  }
  EXPECT(raised);
  auto rowptr = at::tensor({0, 2, 1}, at::kInt);  // not monotone
  auto col = at::tensor({0}, at::kInt);
  raised = false;
  try {
    spmm_op().call(rowptr, col, std::nullopt, at::ones({2, 4}), std::nullopt, std::nullopt, std::nullopt);
  } catch (const c10::Error& e) {
    raised = std::string(e.what_without_backtrace()).find("spmm: malformed CSR") != std::string::npos;
  }
  EXPECT(raised);
}

void test_empty_graph() {
  auto e = at::empty({0}, at::kLong);
  auto [rowptr, col, value] = norm_adj_op().call(e, e, 4, 3);
  EXPECT(rowptr.numel() == 8 && col.numel() == 0 && value.numel() == 0);
  auto x = at::randn({7, 16});
  auto y = spmm_op().call(rowptr, col, value, x, std::nullopt, std::nullopt, std::nullopt);
  EXPECT(y.sizes() == x.sizes() && y.abs().max().item<float>() == 0.0f);
}

}  // namespace

int main() {
  test_norm_adj_and_spmm();
  test_clear_errors();
  test_empty_graph();
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("graph ops: all checks passed\n");
  return 0;
}
