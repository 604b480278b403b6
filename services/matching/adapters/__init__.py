"""Matching's adapters: candidate-pool projection, repository, read tables, mapping."""
