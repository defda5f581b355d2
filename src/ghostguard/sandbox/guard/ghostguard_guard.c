/*
 * ghostguard_guard: what hosted Supabase's supautils refuses `postgres` and PostgreSQL < 16 lets
 * any CREATEROLE role do, refused in the sandbox with hosted's words.
 *
 * Before PostgreSQL 16, CREATEROLE may grant membership in any non-superuser role, so a migration
 * run as `postgres` could grant itself pg_execute_server_program and run `COPY ... TO PROGRAM` on
 * the machine. Hosted projects refuse such grants (supautils.reserved_memberships). This hook
 * refuses them for every non-superuser: GRANT <role> TO ..., CREATE ROLE ... IN ROLE <role>,
 * ALTER GROUP <role> ADD USER ... (DO blocks and functions included: EXECUTE goes through the
 * same hook). It also refuses COPY TO/FROM PROGRAM for everybody: nothing in a sandbox needs it.
 *
 * Built by ghostguard (sandbox/guard.py) only for servers older than 16, whose CREATEROLE is
 * that wide; newer servers already refuse the grants (ADMIN OPTION is required).
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

PG_MODULE_MAGIC;

static ProcessUtility_hook_type previous_hook = NULL;

static const char *const reserved_memberships[] = {
    "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program",
    "supabase_admin", "supabase_auth_admin", "supabase_storage_admin",
    "supabase_read_only_user", "supabase_realtime_admin", "supabase_replication_admin",
    "supabase_etl_admin", "dashboard_user", "pgbouncer", "authenticator", NULL};

static void
refuse_if_reserved(const char *role)
{
    for (int i = 0; role != NULL && reserved_memberships[i] != NULL; i++)
        if (strcmp(role, reserved_memberships[i]) == 0)
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
check_statement(Node *stmt)
{
    ListCell *cell;

    if (IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->is_program)
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("COPY TO/FROM PROGRAM not allowed"),
                 errdetail("The copy to/from program utility statement is disabled")));
    if (superuser())
        return;
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

static void
guard_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
              ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
              DestReceiver *dest, QueryCompletion *qc)
{
    check_statement(pstmt->utilityStmt);
    if (previous_hook)
        previous_hook(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env,
                                dest, qc);
}

void
_PG_init(void)
{
    previous_hook = ProcessUtility_hook;
    ProcessUtility_hook = guard_utility;
}
