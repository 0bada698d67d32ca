"""Glue for other trainers: :mod:`.pyg` (PyTorch Geometric). The libraries they serve stay
optional: importing llmhni never imports them."""
