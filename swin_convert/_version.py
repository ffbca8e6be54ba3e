"""The package version (a module of its own: every room may import it, it imports nothing)."""
__version__ = "0.1.0"
