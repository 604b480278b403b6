"""Enrollment's consumers: the HR directory (directory.py)."""
