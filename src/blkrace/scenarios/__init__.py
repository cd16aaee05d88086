"""Scenarios: one race per module, each a topology, a workload and variants."""
