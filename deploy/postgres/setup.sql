-- PostgreSQL role and database for MailHost. Run as the postgres superuser:
--   sudo -u postgres psql -f deploy/postgres/setup.sql
-- then create the schema with: mailadmin --storage postgres://mailhost@/mailhost?host=/var/run/postgresql db migrate
--
-- The role owns its database, which is all it needs: the first migration creates the pg_trgm extension, a
-- "trusted" extension that a database owner may create.
CREATE ROLE mailhost LOGIN;
CREATE DATABASE mailhost OWNER mailhost ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0;
-- Over TCP from other hosts, give the role a password and allow it in pg_hba.conf, e.g.:
--   ALTER ROLE mailhost PASSWORD 'change-me';
--   host  mailhost  mailhost  10.0.0.0/8  scram-sha-256
-- Local connections over the unix socket can use peer authentication when the server runs as system user
-- "mailhost" (the Debian default for local connections):
--   local  mailhost  mailhost  peer
