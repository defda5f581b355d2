-- ghostguard sandbox stand-in for pg_net (see the control file): net.http_get, http_post and
-- http_delete with pg_net's arguments and defaults; each queues its request in
-- net.http_request_queue and returns its id, as the real one does before its worker sends it.
\echo Use "CREATE EXTENSION pg_net" to load this file. \quit

CREATE SCHEMA IF NOT EXISTS net;

CREATE TABLE net.http_request_queue (
  id bigserial PRIMARY KEY,
  method text NOT NULL,
  url text NOT NULL,
  headers jsonb NOT NULL,
  body bytea,
  timeout_milliseconds integer NOT NULL
);

CREATE TABLE net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION net._queue(method text, url text, headers jsonb, body bytea, timeout integer)
RETURNS bigint LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = '' AS $$
  INSERT INTO net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  VALUES (method, url, headers, body, timeout) RETURNING id
$$;

CREATE FUNCTION net.http_get(
  url text,
  params jsonb DEFAULT '{}'::jsonb,
  headers jsonb DEFAULT '{}'::jsonb,
  timeout_milliseconds integer DEFAULT 5000
) RETURNS bigint LANGUAGE sql VOLATILE STRICT SECURITY DEFINER SET search_path = ''
AS $$ SELECT net._queue('GET', url, headers, NULL, timeout_milliseconds) $$;

CREATE FUNCTION net.http_post(
  url text,
  body jsonb DEFAULT '{}'::jsonb,
  params jsonb DEFAULT '{}'::jsonb,
  headers jsonb DEFAULT '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer DEFAULT 5000
) RETURNS bigint LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = ''
AS $$ SELECT net._queue('POST', url, headers, pg_catalog.convert_to(body::text, 'UTF8'), timeout_milliseconds) $$;

CREATE FUNCTION net.http_delete(
  url text,
  params jsonb DEFAULT '{}'::jsonb,
  headers jsonb DEFAULT '{}'::jsonb,
  timeout_milliseconds integer DEFAULT 5000
) RETURNS bigint LANGUAGE sql VOLATILE STRICT SECURITY DEFINER SET search_path = ''
AS $$ SELECT net._queue('DELETE', url, headers, NULL, timeout_milliseconds) $$;

-- Anyone may queue a request (SECURITY DEFINER, every name qualified), as with the real one's
-- functions, which PUBLIC may execute; only the functions write the queue, and both tables can be
-- read (projects query them to see what was sent).
GRANT USAGE ON SCHEMA net TO PUBLIC;
GRANT EXECUTE ON FUNCTION net.http_get(text, jsonb, jsonb, integer),
  net.http_post(text, jsonb, jsonb, jsonb, integer),
  net.http_delete(text, jsonb, jsonb, integer) TO PUBLIC;
GRANT SELECT ON net.http_request_queue, net._http_response TO PUBLIC;
