-- ghostguard sandbox stand-in for pgsodium (see the control file).
\echo Use "CREATE EXTENSION pgsodium" to load this file. \quit

CREATE SEQUENCE pgsodium.key_key_id_seq;
CREATE TABLE pgsodium.key (
  id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
  status text DEFAULT 'valid',
  created timestamptz NOT NULL DEFAULT pg_catalog.now(),
  expires timestamptz,
  key_type text,
  key_id bigint DEFAULT pg_catalog.nextval('pgsodium.key_key_id_seq'::regclass),
  key_context bytea DEFAULT '\x7067736f6469756d'::bytea,
  name text UNIQUE,
  associated_data text DEFAULT 'associated',
  raw_key bytea,
  raw_key_nonce bytea,
  parent_key uuid,
  comment text,
  user_data text
);
CREATE VIEW pgsodium.valid_key AS
  SELECT id, name, status, key_type, key_id, key_context, created, expires, associated_data
  FROM pgsodium.key
  WHERE status IN ('valid', 'default') AND (expires IS NULL OR expires > pg_catalog.now());
