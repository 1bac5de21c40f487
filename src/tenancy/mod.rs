//! Tenancy: who is asking and in which workspace. A workspace holds its own
//! flows, runs, services, secrets, `kv`, schedules and webhooks; a request
//! acts inside one, as the operator (the `--token` holder, or a loopback
//! client when there is no token) or as the holder of a workspace key with a
//! role. The guard (`http::guard`, with `http::keyring`) turns a request's
//! credentials into a `Caller`; handlers and the store take the workspace
//! from there, never from what the request says about itself. A leaf: the
//! store and everything above it use these types.

pub mod keys;

use serde::{Deserialize, Serialize};
use std::fmt;

/// The workspace everything made before workspaces existed lives in, and
/// the one the operator acts in unless `X-Workspace` names another.
pub const DEFAULT_WORKSPACE: &str = "default";

/// The longest workspace name (names appear in URLs, paths and labels).
pub const MAX_WORKSPACE_NAME: usize = 40;

/// What a key may do, each role including the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read flows, runs, spans, logs, search and streams.
    Viewer,
    /// And start, cancel and replay runs.
    Runner,
    /// And upload and remove flows, register services, make webhooks and
    /// schedules, change a flow's visibility, run source from the editor.
    Developer,
    /// And secrets, the workspace's keys, its audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Runner, Role::Developer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Runner => "runner",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The token holder (or, without a token, a loopback client).
    Operator,
    /// The holder of a workspace key.
    Key { key_id: String, name: String },
}

/// A request's identity, as the guard established it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The workspace the request acts in.
    pub workspace: String,
    /// What it may do there (the operator may do everything).
    pub role: Role,
    pub actor: Actor,
}

impl Caller {
    pub fn operator(workspace: impl Into<String>) -> Caller {
        Caller { workspace: workspace.into(), role: Role::Admin, actor: Actor::Operator }
    }

    pub fn is_operator(&self) -> bool {
        self.actor == Actor::Operator
    }

    /// Whether the caller's role includes `role`.
    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }

    /// The key id, or `None` for the operator.
    pub fn key_id(&self) -> Option<&str> {
        match &self.actor {
            Actor::Operator => None,
            Actor::Key { key_id, .. } => Some(key_id),
        }
    }

    /// How the audit log and run records name who acted.
    pub fn who(&self) -> String {
        match &self.actor {
            Actor::Operator => "operator".to_string(),
            Actor::Key { key_id, name } => format!("key {key_id} ({name})"),
        }
    }
}

/// A workspace name: lower-case letters, digits, `-` and `_`, starting with
/// a letter, at most `MAX_WORKSPACE_NAME` characters; it appears in URLs and
/// in the `X-Workspace` header as it is.
pub fn is_workspace_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= MAX_WORKSPACE_NAME
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_includes_the_ones_before_it() {
        let developer = Caller {
            workspace: "acme".into(),
            role: Role::Developer,
            actor: Actor::Key { key_id: "k".into(), name: "ci".into() },
        };
        assert!(developer.may(Role::Viewer) && developer.may(Role::Runner) && developer.may(Role::Developer));
        assert!(!developer.may(Role::Admin));
        assert!(Caller::operator("default").may(Role::Admin));
        assert_eq!(Role::ALL.map(|role| Role::parse(role.as_str())), Role::ALL.map(Some));
        assert_eq!(Role::parse("owner"), None);
    }

    #[test]
    fn workspace_names_are_plain() {
        for good in ["default", "acme", "team-2", "a_b"] {
            assert!(is_workspace_name(good), "{good}");
        }
        for bad in ["", "Acme", "2team", "a/b", "a b", "é", &"a".repeat(MAX_WORKSPACE_NAME + 1)] {
            assert!(!is_workspace_name(bad), "{bad}");
        }
    }
}
