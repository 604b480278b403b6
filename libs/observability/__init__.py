"""Metrics and ops endpoints shared by Binome services."""
