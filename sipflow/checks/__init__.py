"""Checks for CI: built-in rules and user expectations over an analysis, as ``Finding`` records."""
