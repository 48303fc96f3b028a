"""Circuits: which edges between components carry a behaviour, and how faithful the found circuit is."""
