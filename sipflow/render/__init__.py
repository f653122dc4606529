"""Renderers: pure functions of the model (and of the ladder layout)."""
