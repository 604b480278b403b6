"""The enrollment domain: aggregates rebuilt from their events, checking the
rules and returning new events. Pure Python: no I/O, no framework."""
