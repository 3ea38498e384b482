"""Plastic adapters, their sites on the backbone, rewards and the online-learning engine."""
