"""GenRL: multimodal-foundation world models for generalist embodied agents (PyTorch)."""

__version__ = "0.1.0"
