"""Shared set-up for the policy tests."""

import torch

# The CI machine is small and shared: one intra-op thread keeps the tiny models fast.
torch.set_num_threads(1)
