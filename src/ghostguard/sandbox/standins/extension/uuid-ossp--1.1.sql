-- ghostguard sandbox stand-in for uuid-ossp 1.1, in SQL (see the control file).
\echo Use "CREATE EXTENSION ""uuid-ossp""" to load this file. \quit

CREATE FUNCTION uuid_nil() RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$;
CREATE FUNCTION uuid_ns_dns() RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid $$;
CREATE FUNCTION uuid_ns_url() RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT '6ba7b811-9dad-11d1-80b4-00c04fd430c8'::uuid $$;
CREATE FUNCTION uuid_ns_oid() RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT '6ba7b812-9dad-11d1-80b4-00c04fd430c8'::uuid $$;
CREATE FUNCTION uuid_ns_x500() RETURNS uuid LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT '6ba7b814-9dad-11d1-80b4-00c04fd430c8'::uuid $$;

CREATE FUNCTION uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE
  AS $$ SELECT pg_catalog.gen_random_uuid() $$;

-- Version 1: the 60-bit count of 100 ns since 1582-10-15, a random clock sequence, and a random
-- node with the multicast bit set (what v1mc does; there is no MAC address to read here).
CREATE FUNCTION uuid_generate_v1mc() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT (lpad(to_hex(t & 4294967295), 8, '0') || lpad(to_hex((t >> 32) & 65535), 4, '0')
    || lpad(to_hex(((t >> 48) & 4095) | 4096), 4, '0')
    || lpad(to_hex((floor(random() * 16384)::bigint) | 32768), 4, '0')
    || lpad(to_hex(floor(random() * 281474976710656)::bigint | 1099511627776), 12, '0'))::uuid
  FROM (SELECT (extract(epoch FROM pg_catalog.clock_timestamp()) * 10000000)::bigint
               + 122192928000000000 AS t) AS now_100ns
$$;
CREATE FUNCTION uuid_generate_v1() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE
  AS $$ SELECT @extschema@.uuid_generate_v1mc() $$;

-- Version 3: MD5 of the namespace's bytes and the name, with the version and variant bits set.
CREATE FUNCTION uuid_generate_v3(namespace uuid, name text) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT encode(set_byte(set_byte(h, 6, (get_byte(h, 6) & 15) | 48), 8,
                         (get_byte(h, 8) & 63) | 128), 'hex')::uuid
  FROM (SELECT decode(md5(uuid_send(namespace) || convert_to(name, 'UTF8')), 'hex') AS h) AS hashed
$$;

CREATE FUNCTION uuid_generate_v5(namespace uuid, name text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  RAISE EXCEPTION 'uuid_generate_v5 needs SHA-1, which the ghostguard sandbox stand-in for uuid-ossp does not have'
    USING ERRCODE = 'feature_not_supported',
          HINT = 'rehearse with --pg-bin of a PostgreSQL that has uuid-ossp (e.g. $(pg_config --bindir))';
END
$$;
