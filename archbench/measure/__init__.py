"""Measuring one model: counting, workloads, timing, memory, the device's peak (torch is
imported inside functions only)."""
