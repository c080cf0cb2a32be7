"""Renderers: pure functions from simulation results to lines."""
