"""lstmpaths: LSTM activations as 2-D/3-D paths, and which relationships survive retraining."""

__version__ = "0.1.0"
