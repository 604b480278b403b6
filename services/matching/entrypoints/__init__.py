"""The matching REST API."""
