"""Enrollment's ports to the outside: the event store (repository), the read
tables (projector), spreadsheets (tabular)."""
