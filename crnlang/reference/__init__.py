"""Exact (FSP) and simulation (SSA) backends, both driven by the compiled kernel."""
