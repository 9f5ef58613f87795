"""HRM puzzle solvers: the official HRM ACT v1 architecture, checkpoints, inference and tools."""
