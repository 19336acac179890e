"""The code generator: a model's kernel as a Python module (``emit``, ``compile_model``)."""
