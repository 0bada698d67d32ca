// Schemas of the graph ops: CSR construction, sparse x dense products and the fused
// LightGCN propagation. Reference twins: llmhni_ext/reference/graph.py;
// Python wrappers with fake kernels and autograd: llmhni_ext/ops/graph.py.
//
// CSR convention: rowptr [n_rows + 1] and col [nnz] share one integer dtype (int32
// when the sizes fit, else int64); entries sorted by row, columns sorted within a
// row by the construction ops.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(llmhni, m) {
  // Binary CSR of (row, col) pairs: counting sort by row, columns sorted, duplicates
  // merged. Returns (rowptr, col).
  m.def("csr_from_coo(Tensor row, Tensor col, int n_rows, int n_cols) -> (Tensor, Tensor)");
  // LightGCN's D^-1/2 A D^-1/2 over n_users + n_items nodes, A = [[0, R], [R^T, 0]]
  // (item j is node n_users + j). Returns (rowptr, col, value float32).
  m.def("bipartite_norm_adj(Tensor users, Tensor items, int n_users, int n_items) -> (Tensor, Tensor, Tensor)");
  // Transpose structure of an n_rows x n_cols CSR: (t_rowptr [n_cols + 1], t_col,
  // t_perm) with t_perm[k] the entry of A that becomes entry k of A^T (value_t = value[t_perm]).
  m.def("csr_transpose(Tensor rowptr, Tensor col, int n_cols) -> (Tensor, Tensor, Tensor)");
  // out = A @ x (A binary when value is None); x [n_cols, d], out [n_rows, d] in x's
  // dtype, fp32 accumulation for half types. t_rowptr/t_col/t_perm optionally give
  // A's transpose for the backward (t_perm None: A is symmetric); the forward ignores them.
  m.def("spmm(Tensor rowptr, Tensor col, Tensor? value, Tensor x, Tensor? t_rowptr=None, "
        "Tensor? t_col=None, Tensor? t_perm=None) -> Tensor");
  // out[e] = <a[row(e)], b[col(e)]> for every stored entry e (the gradient of spmm with
  // respect to the edge values); float32 (float64 for float64 inputs).
  m.def("csr_sddmm(Tensor rowptr, Tensor col, Tensor a, Tensor b) -> Tensor");
  // sum_k weights[k] A^k x0, k = 0..len(weights)-1, computed by Horner
  // (h = w_K x0; h = w_k x0 + A h), one sparse pass per layer, no saved intermediates.
  // Square A. The backward is the same op on A^T.
  m.def("lightgcn_propagate(Tensor rowptr, Tensor col, Tensor? value, Tensor x0, float[] weights, "
        "Tensor? t_rowptr=None, Tensor? t_col=None, Tensor? t_perm=None) -> Tensor");
}
