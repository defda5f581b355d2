/*
 * ghostguard_guard: the sandbox's stand-in for hosted Supabase's supautils extension. What hosted
 * lets `postgres` do beyond its grants, it does here as the superuser; what hosted refuses, it
 * refuses with hosted's words (docs/supabase-facts.md, "What hosted lets postgres do").
 *
 * Allowed to `postgres`, run as the bootstrap superuser (supabase_admin), as supautils does:
 *  - CREATE / ALTER (UPDATE, SET SCHEMA) / DROP EXTENSION of an extension on hosted's privileged
 *    list (the server's own privilege checks apply to every other one);
 *  - DROP TRIGGER and CREATE / ALTER / DROP POLICY on the tables of schemas auth, storage and
 *    realtime (`ALTER TABLE ... DISABLE TRIGGER` and every other change stay refused);
 *  - SET and ALTER ROLE / DATABASE ... SET of the settings hosted lets postgres set
 *    (session_replication_role, pgrst.*, log_*, ...), never on a superuser role.
 * Refused to every non-superuser (PostgreSQL < 16 lets CREATEROLE grant them): membership in
 * hosted's reserved roles (GRANT, CREATE ROLE ... IN ROLE, ALTER GROUP ... ADD USER; DO blocks and
 * functions included: EXECUTE goes through the same hook). Refused to everybody: COPY TO/FROM
 * PROGRAM (nothing in a sandbox needs a shell).
 *
 * Built by ghostguard (sandbox/guard.py) against the server's own headers and preloaded.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

PG_MODULE_MAGIC;

static ProcessUtility_hook_type previous_hook = NULL;
static bool loaded = true; /* ghostguard_guard.active: tells any role the guard is there */

static const char *const privileged_role = "postgres";

static const char *const reserved_memberships[] = {
    "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program",
    "supabase_admin", "supabase_auth_admin", "supabase_storage_admin",
    "supabase_read_only_user", "supabase_realtime_admin", "supabase_replication_admin",
    "supabase_etl_admin", "dashboard_user", "pgbouncer", "authenticator", NULL};

/* supautils.privileged_extensions on hosted projects (supautils.conf). */
static const char *const privileged_extensions[] = {
    "address_standardizer", "address_standardizer_data_us", "autoinc", "bloom", "btree_gin",
    "btree_gist", "citext", "cube", "dblink", "dict_int", "dict_xsyn", "earthdistance",
    "fuzzystrmatch", "hstore", "http", "hypopg", "index_advisor", "insert_username", "intarray",
    "isn", "ltree", "moddatetime", "orioledb", "pg_buffercache", "pg_cron", "pg_graphql",
    "pg_hashids", "pg_jsonschema", "pg_net", "pg_prewarm", "pg_repack", "pg_stat_monitor",
    "pg_stat_statements", "pg_tle", "pg_trgm", "pg_walinspect", "pgaudit", "pgcrypto", "pgjwt",
    "pgmq", "pgroonga", "pgroonga_database", "pgrouting", "pgrowlocks", "pgsodium", "pgstattuple",
    "pgtap", "plcoffee", "pljava", "plls", "plpgsql_check", "plv8", "postgis", "postgis_raster",
    "postgis_sfcgal", "postgis_tiger_geocoder", "postgis_topology", "postgres_fdw", "refint",
    "rum", "seg", "sslinfo", "supabase_vault", "supautils", "tablefunc", "tcn", "timescaledb",
    "tsm_system_rows", "tsm_system_time", "unaccent", "uuid-ossp", "vector", "wrappers", NULL};

/* supautils.privileged_role_allowed_configs: a name, or a prefix ending in '.' or '_'. */
static const char *const allowed_configs[] = {
    "session_replication_role", "pgrst.", "auto_explain.", "log_", "pg_net.batch_size",
    "pg_net.ttl", "pg_stat_statements.", "pgaudit.", "plan_filter.", "safeupdate.enabled",
    "track_io_timing", "wal_compression", NULL};

/* The schemas whose tables postgres may drop triggers from and write policies on. */
static const char *const supabase_schemas[] = {"auth", "storage", "realtime", NULL};

static bool
listed(const char *const list[], const char *name)
{
    for (int i = 0; name != NULL && list[i] != NULL; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

static bool
allowed_config(const char *name)
{
    for (int i = 0; name != NULL && allowed_configs[i] != NULL; i++)
    {
        size_t length = strlen(allowed_configs[i]);
        char last = allowed_configs[i][length - 1];

        if ((last == '.' || last == '_') ? strncmp(name, allowed_configs[i], length) == 0
                                         : strcmp(name, allowed_configs[i]) == 0)
            return true;
    }
    return false;
}

static void
refuse_if_reserved(const char *role)
{
    if (listed(reserved_memberships, role))
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("\"%s\" role memberships are reserved, only superusers can grant them",
                        role)));
}

static const char *
role_name(Node *node)
{
    if (node == NULL)
        return NULL;
    if (IsA(node, RoleSpec) && ((RoleSpec *) node)->roletype == ROLESPEC_CSTRING)
        return ((RoleSpec *) node)->rolename;
    if (IsA(node, AccessPriv))
        return ((AccessPriv *) node)->priv_name;
    if (IsA(node, String))
        return strVal(node);
    return NULL;
}

static void
refuse_reserved_in(List *roles)
{
    ListCell *cell;

    foreach (cell, roles)
        refuse_if_reserved(role_name((Node *) lfirst(cell)));
}

static void
refuse_reserved_memberships(Node *stmt)
{
    ListCell *cell;

    if (IsA(stmt, GrantRoleStmt) && ((GrantRoleStmt *) stmt)->is_grant)
        refuse_reserved_in(((GrantRoleStmt *) stmt)->granted_roles);
    else if (IsA(stmt, CreateRoleStmt))
    {
        foreach (cell, ((CreateRoleStmt *) stmt)->options)
        {
            DefElem *option = (DefElem *) lfirst(cell);

            if (strcmp(option->defname, "addroleto") == 0)
                refuse_reserved_in((List *) option->arg);
        }
    }
    else if (IsA(stmt, AlterRoleStmt) && ((AlterRoleStmt *) stmt)->action > 0)
    {
        foreach (cell, ((AlterRoleStmt *) stmt)->options)
        {
            DefElem *option = (DefElem *) lfirst(cell);

            if (strcmp(option->defname, "rolemembers") == 0)
                refuse_if_reserved(role_name((Node *) ((AlterRoleStmt *) stmt)->role));
        }
    }
}

/* Whether the table a trigger or policy hangs on is one of Supabase's (auth, storage, realtime). */
static bool
on_supabase_table(RangeVar *table)
{
    Oid relid = RangeVarGetRelid(table, NoLock, true);
    char *schema;

    if (!OidIsValid(relid))
        return false;
    schema = get_namespace_name(get_rel_namespace(relid));
    return listed(supabase_schemas, schema);
}

/* DROP TRIGGER / DROP POLICY name the table as all but the last of each object's names. */
static bool
every_on_supabase_table(List *objects)
{
    ListCell *cell;

    if (objects == NIL)
        return false;
    foreach (cell, objects)
    {
        List *names = (List *) lfirst(cell);

        if (list_length(names) < 2 ||
            !on_supabase_table(makeRangeVarFromNameList(list_truncate(list_copy(names),
                                                                      list_length(names) - 1))))
            return false;
    }
    return true;
}

static bool
every_privileged_extension(List *objects)
{
    ListCell *cell;

    if (objects == NIL)
        return false;
    foreach (cell, objects)
        if (!listed(privileged_extensions, role_name((Node *) lfirst(cell))))
            return false;
    return true;
}

static bool
settable_on(RoleSpec *role, VariableSetStmt *setting)
{
    Oid roleid;

    if (role == NULL || role->roletype != ROLESPEC_CSTRING || setting->name == NULL)
        return false;
    roleid = get_role_oid(role->rolename, true);
    return OidIsValid(roleid) && !superuser_arg(roleid) && allowed_config(setting->name);
}

/* What hosted lets postgres do through supautils, beyond what its grants allow. */
static bool
runs_as_superuser(Node *stmt)
{
    switch (nodeTag(stmt))
    {
        case T_CreateExtensionStmt:
            return listed(privileged_extensions, ((CreateExtensionStmt *) stmt)->extname);
        case T_AlterExtensionStmt:
            return listed(privileged_extensions, ((AlterExtensionStmt *) stmt)->extname);
        case T_AlterObjectSchemaStmt:
            return ((AlterObjectSchemaStmt *) stmt)->objectType == OBJECT_EXTENSION &&
                   listed(privileged_extensions,
                          role_name(((AlterObjectSchemaStmt *) stmt)->object));
        case T_DropStmt:
        {
            DropStmt *drop = (DropStmt *) stmt;

            if (drop->removeType == OBJECT_EXTENSION)
                return every_privileged_extension(drop->objects);
            if (drop->removeType == OBJECT_TRIGGER || drop->removeType == OBJECT_POLICY)
                return every_on_supabase_table(drop->objects);
            return false;
        }
        case T_CreatePolicyStmt:
            return on_supabase_table(((CreatePolicyStmt *) stmt)->table);
        case T_AlterPolicyStmt:
            return on_supabase_table(((AlterPolicyStmt *) stmt)->table);
        case T_VariableSetStmt:
            return allowed_config(((VariableSetStmt *) stmt)->name);
        case T_AlterRoleSetStmt:
            return ((AlterRoleSetStmt *) stmt)->database == NULL &&
                   settable_on(((AlterRoleSetStmt *) stmt)->role,
                               ((AlterRoleSetStmt *) stmt)->setstmt);
        case T_AlterDatabaseSetStmt:
            return ((AlterDatabaseSetStmt *) stmt)->setstmt->name != NULL &&
                   allowed_config(((AlterDatabaseSetStmt *) stmt)->setstmt->name);
        default:
            return false;
    }
}

static bool
is_privileged_role(void)
{
    char *name = GetUserNameFromId(GetUserId(), true);

    return name != NULL && strcmp(name, privileged_role) == 0;
}

static void
run(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
    ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
    DestReceiver *dest, QueryCompletion *qc)
{
    if (previous_hook)
        previous_hook(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env,
                                dest, qc);
}

static void
guard_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
              ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
              DestReceiver *dest, QueryCompletion *qc)
{
    Node *stmt = pstmt->utilityStmt;
    Oid saved_user;
    int saved_context;

    if (IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->is_program)
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("COPY TO/FROM PROGRAM not allowed"),
                 errdetail("The copy to/from program utility statement is disabled")));
    if (superuser())
    {
        run(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
        return;
    }
    refuse_reserved_memberships(stmt);
    if (!is_privileged_role() || !runs_as_superuser(stmt))
    {
        run(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
        return;
    }
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, saved_context | SECURITY_LOCAL_USERID_CHANGE);
    PG_TRY();
    {
        run(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    }
    PG_FINALLY();
    {
        SetUserIdAndSecContext(saved_user, saved_context);
    }
    PG_END_TRY();
}

void
_PG_init(void)
{
    DefineCustomBoolVariable("ghostguard_guard.active", "The sandbox's supautils stand-in is loaded.",
                             NULL, &loaded, true, PGC_INTERNAL, 0, NULL, NULL, NULL);
    MarkGUCPrefixReserved("ghostguard_guard");
    previous_hook = ProcessUtility_hook;
    ProcessUtility_hook = guard_utility;
}
