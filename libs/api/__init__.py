"""Shared HTTP plumbing for Binome services (app factory, errors, security)."""
