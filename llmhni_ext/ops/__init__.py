"""Public ops. Each function dispatches to ``torch.ops.llmhni.<op>`` when a kernel
for the tensors' device was compiled, else to its reference twin in
:mod:`llmhni_ext.reference`; fake kernels and autograd are registered here too."""
