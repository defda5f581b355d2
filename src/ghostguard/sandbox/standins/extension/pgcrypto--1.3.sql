-- ghostguard sandbox stand-in for pgcrypto 1.3, in SQL (see the control file): pgcrypto's names
-- and arguments for what migrations and seeds call.
\echo Use "CREATE EXTENSION pgcrypto" to load this file. \quit

CREATE FUNCTION gen_random_uuid() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE
  AS $$ SELECT pg_catalog.gen_random_uuid() $$;

-- Strong random bytes: SHA-256 over two random UUIDs (244 random bits) per 32 bytes.
CREATE FUNCTION gen_random_bytes(integer) RETURNS bytea LANGUAGE plpgsql VOLATILE STRICT AS $$
DECLARE
  wanted ALIAS FOR $1;
  found bytea := ''::bytea;
BEGIN
  IF wanted < 1 OR wanted > 1024 THEN
    RAISE EXCEPTION 'Length not in range' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  WHILE pg_catalog.length(found) < wanted LOOP
    found := found || pg_catalog.sha256(pg_catalog.uuid_send(pg_catalog.gen_random_uuid())
                                        || pg_catalog.uuid_send(pg_catalog.gen_random_uuid()));
  END LOOP;
  RETURN pg_catalog.substr(found, 1, wanted);
END
$$;

CREATE FUNCTION digest(bytea, text) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  CASE pg_catalog.lower($2)
    WHEN 'md5' THEN RETURN pg_catalog.decode(pg_catalog.md5($1), 'hex');
    WHEN 'sha224' THEN RETURN pg_catalog.sha224($1);
    WHEN 'sha256' THEN RETURN pg_catalog.sha256($1);
    WHEN 'sha384' THEN RETURN pg_catalog.sha384($1);
    WHEN 'sha512' THEN RETURN pg_catalog.sha512($1);
    ELSE RAISE EXCEPTION 'Cannot use "%": the ghostguard sandbox stand-in for pgcrypto has md5 and sha224 to sha512', $2
      USING ERRCODE = 'feature_not_supported';
  END CASE;
END
$$;
CREATE FUNCTION digest(text, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT @extschema@.digest(pg_catalog.convert_to($1, 'UTF8'), $2) $$;

-- HMAC (RFC 2104) over the same hashes: block size 64 bytes, 128 for SHA-384 and SHA-512.
CREATE FUNCTION hmac(bytea, bytea, text) RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  block integer := CASE WHEN pg_catalog.lower($3) IN ('sha384', 'sha512') THEN 128 ELSE 64 END;
  k bytea := $2;
  inner_pad bytea;
  outer_pad bytea;
BEGIN
  IF pg_catalog.length(k) > block THEN
    k := @extschema@.digest(k, $3);
  END IF;
  k := k || pg_catalog.decode(pg_catalog.repeat('00', block - pg_catalog.length(k)), 'hex');
  inner_pad := k;
  outer_pad := k;
  FOR i IN 0 .. block - 1 LOOP
    inner_pad := pg_catalog.set_byte(inner_pad, i, pg_catalog.get_byte(k, i) # 54);
    outer_pad := pg_catalog.set_byte(outer_pad, i, pg_catalog.get_byte(k, i) # 92);
  END LOOP;
  RETURN @extschema@.digest(outer_pad || @extschema@.digest(inner_pad || $1, $3), $3);
END
$$;
CREATE FUNCTION hmac(text, text, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT @extschema@.hmac(pg_catalog.convert_to($1, 'UTF8'), pg_catalog.convert_to($2, 'UTF8'), $3)
$$;

-- Salts in crypt()'s formats: bf ($2a$NN$ + 22 characters), md5 ($1$ + 8), xdes (_ + 4 + 4), des (2).
CREATE FUNCTION gen_salt(text, integer) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  alphabet constant text := './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  wanted integer := CASE pg_catalog.lower($1) WHEN 'bf' THEN 22 WHEN 'md5' THEN 8
                      WHEN 'xdes' THEN 4 WHEN 'des' THEN 2 END;
  salt text := '';
BEGIN
  IF $1 IS NULL THEN
    RETURN NULL;
  END IF;
  IF wanted IS NULL THEN
    RAISE EXCEPTION 'gen_salt: Unknown salt algorithm' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR i IN 1 .. wanted LOOP
    salt := salt || pg_catalog.substr(alphabet, 1 + pg_catalog.get_byte(
      pg_catalog.uuid_send(pg_catalog.gen_random_uuid()), 15) % 64, 1);
  END LOOP;
  RETURN CASE pg_catalog.lower($1)
    WHEN 'bf' THEN '$2a$' || pg_catalog.lpad(COALESCE($2, 6)::text, 2, '0') || '$' || salt
    WHEN 'md5' THEN '$1$' || salt
    WHEN 'xdes' THEN '_J9..' || salt
    ELSE salt END;
END
$$;
CREATE FUNCTION gen_salt(text) RETURNS text LANGUAGE sql VOLATILE STRICT
  AS $$ SELECT @extschema@.gen_salt($1, NULL) $$;

-- crypt(password, salt-or-hash): the salt's prefix kept, the rest (as long as the real hash's)
-- from SHA-256 of prefix and password, so crypt(password, crypt(password, gen_salt('bf'))) gives
-- the stored hash back, as logins checked in SQL expect. The value is not bcrypt's (the sandbox's
-- Auth server never reads it).
CREATE FUNCTION crypt(text, text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT prefix || pg_catalog.left(pg_catalog.translate(
    pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(prefix || $1, 'UTF8')), 'base64'),
    '+=', '.'), hash_length)
  FROM (SELECT CASE
      WHEN $2 ~ '^\$2[abxy]?\$[0-9]{2}\$' THEN pg_catalog.left($2, 29)
      WHEN $2 LIKE '$1$%' THEN pg_catalog.substring($2, '^\$1\$[^$]{0,8}') || '$'
      WHEN $2 LIKE '\_%' THEN pg_catalog.left($2, 9)
      ELSE pg_catalog.left($2, 2) END AS prefix,
    CASE WHEN $2 ~ '^\$2' THEN 31 WHEN $2 LIKE '$1$%' THEN 22 ELSE 11 END AS hash_length) AS salted
$$;
