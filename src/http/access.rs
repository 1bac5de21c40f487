//! Who may call each route: one table, which the router is built from
//! (`Routes::route` refuses a route without a row) and the guard reads for
//! every request (`access_for`). The tests walk the same table, so a route
//! cannot be added without saying who may call it.

use crate::tenancy::Role;
use axum::http::Method;

/// What a route needs of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: the page's files, liveness and readiness.
    Open,
    /// The webhook's unguessable id in the path is its credential.
    Webhook,
    /// The operator only (workspaces, limits, node-wide metrics).
    Operator,
    /// At least this role in the caller's workspace.
    Role(Role),
    /// A workspace's admin for the workspace named in the path, or the
    /// operator for any (the workspace's keys).
    PathWorkspaceAdmin,
    /// At least this role, and the caller acting in the `default`
    /// workspace: the route reaches what is kept for `default` only so far
    /// (services, secrets, webhooks, schedules, `kv`); other workspaces get
    /// 403 `workspace_unsupported` until it is kept per workspace.
    DefaultWorkspace(Role),
}

use Access::*;
use Role::*;

/// Every route, its method and what it needs.
pub const ROUTES: &[(Method, &str, Access)] = &[
    (Method::GET, "/", Open),
    (Method::GET, "/ui/{*path}", Open),
    (Method::GET, "/vendor/{*path}", Open),
    (Method::GET, "/healthz", Open),
    (Method::GET, "/readyz", Open),
    (Method::GET, "/metrics", Operator),
    (Method::GET, "/api/quotas", Role(Viewer)),
    (Method::GET, "/api/whoami", Role(Viewer)),
    (Method::POST, "/api/workspaces", Operator),
    (Method::GET, "/api/workspaces", Operator),
    (Method::DELETE, "/api/workspaces/{ws}", Operator),
    (Method::PUT, "/api/workspaces/{ws}/limits", Operator),
    (Method::POST, "/api/workspaces/{ws}/keys", PathWorkspaceAdmin),
    (Method::GET, "/api/workspaces/{ws}/keys", PathWorkspaceAdmin),
    (Method::DELETE, "/api/workspaces/{ws}/keys/{key_id}", PathWorkspaceAdmin),
    (Method::GET, "/api/audit", Role(Admin)),
    (Method::POST, "/api/flows", DefaultWorkspace(Developer)),
    (Method::GET, "/api/flows", DefaultWorkspace(Viewer)),
    (Method::GET, "/api/flows/search", DefaultWorkspace(Viewer)),
    (Method::DELETE, "/api/flows/search", DefaultWorkspace(Developer)),
    (Method::POST, "/api/check", DefaultWorkspace(Developer)),
    (Method::GET, "/api/flows/{name}", DefaultWorkspace(Viewer)),
    (Method::DELETE, "/api/flows/{name}", DefaultWorkspace(Developer)),
    (Method::POST, "/api/flows/{name}/hooks", DefaultWorkspace(Developer)),
    (Method::GET, "/api/flows/{name}/hooks", DefaultWorkspace(Viewer)),
    (Method::DELETE, "/api/hooks/{id}", DefaultWorkspace(Developer)),
    (Method::POST, "/hooks/{id}", Webhook),
    (Method::POST, "/api/services", DefaultWorkspace(Developer)),
    (Method::GET, "/api/services", DefaultWorkspace(Viewer)),
    (Method::DELETE, "/api/services/{name}", DefaultWorkspace(Developer)),
    (Method::POST, "/api/services/{name}/health", DefaultWorkspace(Runner)),
    (Method::POST, "/api/schedules", DefaultWorkspace(Developer)),
    (Method::GET, "/api/schedules", DefaultWorkspace(Viewer)),
    (Method::DELETE, "/api/schedules/{id}", DefaultWorkspace(Developer)),
    (Method::POST, "/api/secrets", DefaultWorkspace(Admin)),
    (Method::GET, "/api/secrets", DefaultWorkspace(Admin)),
    (Method::DELETE, "/api/secrets/{name}", DefaultWorkspace(Admin)),
    (Method::GET, "/api/stubs/hero_logic.pyi", DefaultWorkspace(Viewer)),
    (Method::POST, "/api/runs", DefaultWorkspace(Runner)),
    (Method::GET, "/api/runs", Role(Viewer)),
    (Method::GET, "/api/runs/{id}", Role(Viewer)),
    (Method::GET, "/api/runs/{id}/spans", Role(Viewer)),
    (Method::GET, "/api/runs/{id}/source", Role(Viewer)),
    (Method::GET, "/api/runs/{id}/logs", Role(Viewer)),
    (Method::POST, "/api/runs/{id}/cancel", Role(Runner)),
    (Method::GET, "/api/runs/{id}/otlp", Role(Viewer)),
    (Method::GET, "/api/runs/{id}/journal", Role(Viewer)),
    (Method::POST, "/api/runs/{id}/replay", DefaultWorkspace(Runner)),
    (Method::GET, "/api/runs/{id}/events", Role(Viewer)),
    (Method::GET, "/api/events", Role(Viewer)),
];

/// What a request to `path` (the route's pattern, as matched) with
/// `method` needs; `None` for no route (the fallback's 404 and 405 still
/// need a caller, as every unknown path does). HEAD is answered by GET's
/// handler, so it needs what GET does.
pub fn access_for(method: &Method, path: &str) -> Option<Access> {
    let method = if method == Method::HEAD { &Method::GET } else { method };
    ROUTES.iter().find(|(m, p, _)| m == method && *p == path).map(|(_, _, access)| *access)
}

/// The role table the README and the page show: each role and what it adds.
pub const ROLE_TABLE: &[(Role, &str)] = &[
    (Viewer, "read flows, runs, spans, logs, search and streams"),
    (Runner, "start, cancel and replay runs"),
    (Developer, "upload and remove flows, run source, register services, make webhooks and schedules"),
    (Admin, "set and remove secrets, make and revoke the workspace's keys, read its audit log"),
];
