"""The package version, importable without loading the package face (checkpoints record it)."""

__version__ = "0.1.0"
