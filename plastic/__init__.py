"""plastic: a frozen spiking language model whose plastic adapters keep learning while it runs."""

__version__ = "0.1.0"
