-- ghostguard sandbox stand-in for pg_cron 1.6 (see the control file): cron.job and
-- cron.job_run_details as pg_cron has them, each role seeing its own jobs, and schedule,
-- schedule_in_database, unschedule and alter_job with its arguments.
\echo Use "CREATE EXTENSION pg_cron" to load this file. \quit

CREATE SCHEMA IF NOT EXISTS cron;

CREATE TABLE cron.job (
  jobid bigserial PRIMARY KEY,
  schedule text NOT NULL,
  command text NOT NULL,
  nodename text NOT NULL DEFAULT 'localhost',
  nodeport integer NOT NULL DEFAULT coalesce(pg_catalog.inet_server_port(), pg_catalog.current_setting('port')::integer),
  database text NOT NULL DEFAULT pg_catalog.current_database(),
  username text NOT NULL DEFAULT CURRENT_USER,
  active boolean NOT NULL DEFAULT true,
  jobname text,
  CONSTRAINT jobname_username_uniq UNIQUE (jobname, username)
);

CREATE TABLE cron.job_run_details (
  jobid bigint,
  runid bigserial PRIMARY KEY,
  job_pid integer,
  database text,
  username text,
  command text,
  status text,
  return_message text,
  start_time timestamptz,
  end_time timestamptz
);

ALTER TABLE cron.job ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron.job_run_details ENABLE ROW LEVEL SECURITY;
CREATE POLICY cron_job_policy ON cron.job USING (username OPERATOR(pg_catalog.=) CURRENT_USER);
CREATE POLICY cron_job_run_details_policy ON cron.job_run_details
  USING (username OPERATOR(pg_catalog.=) CURRENT_USER);
GRANT USAGE ON SCHEMA cron TO PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON cron.job TO PUBLIC;
GRANT SELECT, DELETE ON cron.job_run_details TO PUBLIC;
GRANT USAGE ON SEQUENCE cron.job_jobid_seq TO PUBLIC;

CREATE FUNCTION cron.schedule_in_database(
  job_name text, schedule text, command text, database text,
  username text DEFAULT NULL, active boolean DEFAULT true
) RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
DECLARE
  found_id bigint;
BEGIN
  IF schedule !~ '^\s*(@\w+|\d+\s+seconds?|(\S+\s+){4}\S+)\s*$' THEN
    RAISE EXCEPTION 'invalid schedule: %', schedule USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE cron.job j SET schedule = $2, command = $3, database = $4, active = $6
    WHERE j.jobname = $1 AND j.username = COALESCE($5, CURRENT_USER)
    RETURNING j.jobid INTO found_id;
  IF found_id IS NULL THEN
    INSERT INTO cron.job (schedule, command, database, username, active, jobname)
    VALUES ($2, $3, $4, COALESCE($5, CURRENT_USER), $6, $1) RETURNING jobid INTO found_id;
  END IF;
  RETURN found_id;
END
$$;

CREATE FUNCTION cron.schedule(job_name text, schedule text, command text) RETURNS bigint
LANGUAGE sql VOLATILE STRICT SET search_path = ''
AS $$ SELECT cron.schedule_in_database(job_name, schedule, command, pg_catalog.current_database()) $$;

CREATE FUNCTION cron.schedule(schedule text, command text) RETURNS bigint
LANGUAGE sql VOLATILE STRICT SET search_path = ''
AS $$ SELECT cron.schedule_in_database(NULL, schedule, command, pg_catalog.current_database()) $$;

CREATE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SET search_path = '' AS $$
BEGIN
  DELETE FROM cron.job WHERE jobid = job_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'could not find valid entry for job %', job_id;
  END IF;
  RETURN true;
END
$$;

CREATE FUNCTION cron.unschedule(job_name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SET search_path = '' AS $$
BEGIN
  DELETE FROM cron.job WHERE jobname = job_name AND username = CURRENT_USER;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'could not find valid entry for job ''%''', job_name;
  END IF;
  RETURN true;
END
$$;

CREATE FUNCTION cron.alter_job(
  job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
  database text DEFAULT NULL, username text DEFAULT NULL, active boolean DEFAULT NULL
) RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = '' AS $$
BEGIN
  UPDATE cron.job j SET schedule = COALESCE($2, j.schedule), command = COALESCE($3, j.command),
    database = COALESCE($4, j.database), username = COALESCE($5, j.username),
    active = COALESCE($6, j.active)
  WHERE j.jobid = $1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'Job % does not exist or you do not own it', job_id;
  END IF;
END
$$;
