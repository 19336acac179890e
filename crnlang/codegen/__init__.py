"""The code generator: a model's kernel as a Python module (``emit.emit`` the source, ``loader.load_kernel`` the module)."""
