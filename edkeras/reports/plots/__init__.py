"""Figures; one module per topic."""
