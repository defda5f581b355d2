-- ghostguard sandbox stand-in for pg_jsonschema (see the control file). Checked: the schema's
-- top-level "type" (object, array, string, number, integer, boolean, null, or a list of them) and,
-- for an object, its "required" keys. Accepted unchecked: everything else (properties, formats,
-- patterns, nested schemas, $ref). A rehearsal replays a folder's CHECK constraints and seeds;
-- it does not stand for the validation itself.
\echo Use "CREATE EXTENSION pg_jsonschema" to load this file. \quit

CREATE FUNCTION @extschema@.jsonb_matches_schema(schema json, instance jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
DECLARE
  spec jsonb := schema::jsonb;
  kind text := pg_catalog.jsonb_typeof(instance);
  types jsonb := CASE pg_catalog.jsonb_typeof(spec -> 'type')
                   WHEN 'string' THEN pg_catalog.jsonb_build_array(spec -> 'type')
                   WHEN 'array' THEN spec -> 'type' END;
BEGIN
  IF pg_catalog.jsonb_typeof(spec) <> 'object' THEN
    RETURN spec IS DISTINCT FROM 'false'::jsonb;
  END IF;
  IF types IS NOT NULL AND NOT (
    types ? kind
    OR (kind = 'number' AND types ? 'integer' AND instance::text !~ '[.eE]')
  ) THEN
    RETURN false;
  END IF;
  IF kind = 'object' AND pg_catalog.jsonb_typeof(spec -> 'required') = 'array' THEN
    RETURN NOT EXISTS (
      SELECT 1 FROM pg_catalog.jsonb_array_elements_text(spec -> 'required') AS r(name)
      WHERE NOT instance ? r.name
    );
  END IF;
  RETURN true;
END
$$;

CREATE FUNCTION @extschema@.json_matches_schema(schema json, instance json) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
  SELECT @extschema@.jsonb_matches_schema(schema, instance::jsonb)
$$;

CREATE FUNCTION @extschema@.jsonschema_is_valid(schema json) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
  SELECT pg_catalog.jsonb_typeof(schema::jsonb) IN ('object', 'boolean')
$$;

CREATE FUNCTION @extschema@.jsonschema_validation_errors(schema json, instance json)
RETURNS text[] LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
  SELECT CASE WHEN @extschema@.json_matches_schema(schema, instance) THEN ARRAY[]::text[]
    ELSE ARRAY['does not match the schema''s type or required keys (ghostguard stand-in)'] END
$$;
