"""Backbones (the frozen spiking LM), the tokenizer and checkpoints. Knows nothing of plasticity."""
