"""The evaluation domain: pure Python, no I/O. Templates and their rules,
answers checked against a template version, assignments and what triggers
them, and the arithmetic of results (scores, deltas, k-anonymous aggregates)."""
