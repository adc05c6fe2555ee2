#!/bin/sh
# One database and one role per service; a role can connect to its own database only.
# Passwords come from the environment (see compose.yaml); run once by the postgres image on first start.
set -eu
for service in users orders notifications; do
  password=$(eval echo "\${POSTGRES_$(echo "$service" | tr a-z A-Z)_PASSWORD}")
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE $service LOGIN PASSWORD '$password';
CREATE DATABASE $service OWNER $service;
REVOKE CONNECT ON DATABASE $service FROM PUBLIC;
GRANT CONNECT ON DATABASE $service TO $service;
SQL
done
