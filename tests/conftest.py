"""Test-session settings."""

import torch

# Many small tensor operations: one intra-op thread is faster than two on a small shared machine.
torch.set_num_threads(1)
