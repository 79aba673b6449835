#!/bin/sh
# Run once by the postgres image, as its bootstrap superuser, when it creates an empty data
# directory (files in /docker-entrypoint-initdb.d). Creates the two roles of docs/deploy.md:
#   tollgate_owner  owns the database and its schema, runs `migrate` and `db_roles --apply`;
#   tollgate_app    what web, worker, beat and audit-verify connect as: owns nothing, and gets
#                   only SELECT and INSERT on the audit tables (from `db_roles --apply`).
# Neither is a superuser: a superuser or a table's owner could switch the audit triggers off.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner_password="$POSTGRES_OWNER_PASSWORD" -v app_password="$POSTGRES_APP_PASSWORD" <<'SQL'
CREATE ROLE tollgate_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE tollgate_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
-- PostgreSQL 15: the public schema belongs to the database's owner, so the owner may CREATE
-- in it and nobody else may.
ALTER DATABASE tollgate OWNER TO tollgate_owner;
REVOKE ALL ON DATABASE tollgate FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE tollgate TO tollgate_app;
SQL
