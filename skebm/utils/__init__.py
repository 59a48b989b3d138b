"""Utilities shared by the estimators: docstring fragments and validation helpers."""
