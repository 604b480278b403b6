"""How the outside world reaches enrollment: the REST API."""
