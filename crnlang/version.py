"""The crnlang version: part of every generated kernel's header and of its cache key."""
__version__ = "0.1.0"
