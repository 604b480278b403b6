"""Use cases: command handlers (write side) and views (read side)."""
