-- ghostguard sandbox stand-in for pgjwt (see the control file): base64url, HMAC signatures and
-- verification of HS256/HS384/HS512 tokens.
\echo Use "CREATE EXTENSION pgjwt" to load this file. \quit

CREATE FUNCTION @extschema@.url_encode(data bytea) RETURNS text LANGUAGE sql IMMUTABLE
SET search_path = '' AS $$
  SELECT pg_catalog.translate(pg_catalog.encode(data, 'base64'), E'+/=\n', '-_')
$$;

CREATE FUNCTION @extschema@.url_decode(data text) RETURNS bytea LANGUAGE sql IMMUTABLE
SET search_path = '' AS $$
  SELECT pg_catalog.decode(
    pg_catalog.rpad(pg_catalog.translate(data, '-_', '+/'),
                    4 * ((pg_catalog.length(data) + 3) / 4), '='),
    'base64')
$$;

CREATE FUNCTION @extschema@.algorithm_sign(signables text, secret text, algorithm text)
RETURNS text LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
  SELECT @extschema@.url_encode(@extschema:pgcrypto@.hmac(signables, secret,
    CASE algorithm WHEN 'HS256' THEN 'sha256' WHEN 'HS384' THEN 'sha384'
                   WHEN 'HS512' THEN 'sha512' END))
$$;

CREATE FUNCTION @extschema@.sign(payload json, secret text, algorithm text DEFAULT 'HS256')
RETURNS text LANGUAGE sql IMMUTABLE SET search_path = '' AS $$
  SELECT signables || '.' || @extschema@.algorithm_sign(signables, secret, algorithm)
  FROM (SELECT @extschema@.url_encode(pg_catalog.convert_to(
                 '{"alg":"' || algorithm || '","typ":"JWT"}', 'utf8'))
               || '.' || @extschema@.url_encode(pg_catalog.convert_to(payload::text, 'utf8'))
               AS signables) AS parts
$$;

CREATE FUNCTION @extschema@.try_cast_double(inp text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE SET search_path = '' AS $$
BEGIN
  RETURN inp::double precision;
EXCEPTION WHEN others THEN
  RETURN NULL;
END
$$;

CREATE FUNCTION @extschema@.verify(token text, secret text, algorithm text DEFAULT 'HS256')
RETURNS TABLE (header json, payload json, valid boolean) LANGUAGE sql IMMUTABLE
SET search_path = '' AS $$
  SELECT pg_catalog.convert_from(@extschema@.url_decode(r[1]), 'utf8')::json,
         pg_catalog.convert_from(@extschema@.url_decode(r[2]), 'utf8')::json,
         r[3] = @extschema@.algorithm_sign(r[1] || '.' || r[2], secret, algorithm)
  FROM pg_catalog.regexp_split_to_array(token, '\.') AS r
$$;
