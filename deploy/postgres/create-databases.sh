#!/bin/sh
# Creates one database per Binome service, named in POSTGRES_DATABASES
# (comma- or space-separated). The postgres image runs this once, when it
# initialises an empty data volume; for a volume that already exists, create
# a new service's database by hand:
#   docker compose exec postgres createdb -U binome NAME
set -eu
for db in $(echo "${POSTGRES_DATABASES:-}" | tr ',' ' '); do
    echo "creating database $db"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
