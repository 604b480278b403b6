"""Running Binome: what a service declares, and the process that runs them all."""
