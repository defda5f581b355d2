-- ghostguard sandbox stand-in for pg_graphql (see the control file).
\echo Use "CREATE EXTENSION pg_graphql" to load this file. \quit

CREATE SEQUENCE graphql.seq_schema_version;
CREATE TABLE graphql.schema_version (ver integer PRIMARY KEY DEFAULT pg_catalog.nextval('graphql.seq_schema_version'));

CREATE FUNCTION graphql.graphql(
  "operationName" text DEFAULT NULL, query text DEFAULT NULL,
  variables jsonb DEFAULT NULL, extensions jsonb DEFAULT NULL
) RETURNS jsonb LANGUAGE sql STABLE SET search_path = '' AS $$
  SELECT '{"errors": [{"message": "the ghostguard sandbox has no GraphQL"}]}'::jsonb
$$;
CREATE FUNCTION graphql.get_built_schema_version() RETURNS integer LANGUAGE sql STABLE
SET search_path = '' AS $$ SELECT pg_catalog.max(ver) FROM graphql.schema_version $$;
CREATE FUNCTION graphql.rebuild_schema() RETURNS void LANGUAGE sql SET search_path = ''
AS $$ INSERT INTO graphql.schema_version DEFAULT VALUES $$;
CREATE FUNCTION graphql.rebuild_on_ddl() RETURNS event_trigger LANGUAGE plpgsql
SET search_path = '' AS $$ BEGIN END $$;
CREATE FUNCTION graphql.rebuild_on_drop() RETURNS event_trigger LANGUAGE plpgsql
SET search_path = '' AS $$ BEGIN END $$;
CREATE FUNCTION graphql.variable_definitions_sort(variable_definitions jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$ SELECT variable_definitions $$;
CREATE FUNCTION graphql.comment_directive(comment_ text) RETURNS jsonb LANGUAGE sql IMMUTABLE
SET search_path = '' AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION graphql.exception(message text) RETURNS text LANGUAGE plpgsql
SET search_path = '' AS $$ BEGIN RAISE EXCEPTION USING errcode = '22000', message = message; END $$;
