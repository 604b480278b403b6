"""What every service's domain shares: the errors it refuses commands with."""
