"""Matching's command handlers and views."""
