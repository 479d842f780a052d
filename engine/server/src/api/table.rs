//! The route table's row type and what rows share: who may call ([`Access`]), what a route
//! takes ([`Body`]), the role sets and the row builders. Handlers and the OpenAPI document
//! read these from here, not from `api` itself, whose route table names every handler.

use super::params::QueryParam;
use super::state::AppState;
use crate::auth::Caller;
use axum::http::Method;
use axum::routing::MethodRouter;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no token.
    Public,
    /// A token holding one of these roles.
    Roles(&'static [&'static str]),
    /// A token holding any `approver:<role>` role.
    Approver,
    /// Any valid token; the handler decides (claiming work checks the stage's owner role).
    AnyToken,
    /// A token holding one of these roles, or the person the instance's current work is
    /// assigned to (`/v1/instances/{id}/...` routes): "my work" is readable and actionable
    /// by its assignee, who may hold only an `approver:<role>` role.
    RolesOrAssignee(&'static [&'static str]),
}

impl Access {
    /// True when `caller` may call.
    pub fn allows(self, caller: &Caller) -> bool {
        match self {
            Access::Public => true,
            Access::Roles(roles) | Access::RolesOrAssignee(roles) => {
                roles.iter().any(|r| caller.has(r))
            }
            Access::Approver => !caller.approver_roles().is_empty(),
            Access::AnyToken => true,
        }
    }
}

/// What a route takes as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Nothing.
    None,
    /// JSON matching the named schema of the OpenAPI document.
    Json(&'static str),
    /// As [`Body::Json`], but a request may also send no body at all.
    OptionalJson(&'static str),
    /// `application/wasm` bytes.
    Wasm,
}

/// One route of the API.
#[derive(Debug, Clone)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}` placeholders.
    pub path: &'static str,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// Who may call.
    pub access: Access,
    /// What it takes.
    pub body: Body,
    /// The success status.
    pub ok: u16,
    /// Error statuses it can answer besides 401/403 (and 5xx).
    pub errors: &'static [u16],
    /// The query parameters its handler reads (and refuses any other): the same constant
    /// the handler passes to `params::refuse_unknown`, so the document cannot drift.
    pub query: &'static [QueryParam],
}

pub(super) const ADMIN: Access = Access::Roles(&["admin"]);
pub(super) const DEVELOPER: Access = Access::Roles(&["developer"]);
pub(super) const OPERATOR: Access = Access::Roles(&["operator"]);
pub(super) const READ_WORKFLOWS: Access = Access::Roles(&["admin", "operator", "developer"]);
pub(super) const READ_INSTANCES: Access = Access::Roles(&["operator", "admin"]);
/// Who may see and revoke a customer's progress link: the same people.
pub(super) const MANAGE_LINKS: Access = Access::Roles(&["operator", "admin"]);
pub(super) const READ_PLUGINS: Access = Access::Roles(&["developer", "admin"]);
pub(super) const READ_OWN_WORK: Access = Access::RolesOrAssignee(&["operator", "admin"]);
pub(super) const ACT_ON_OWN_WORK: Access = Access::RolesOrAssignee(&["operator"]);

#[allow(clippy::too_many_arguments)]
pub(super) fn route(
    method: Method,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    access: Access,
    body: Body,
    ok: u16,
    errors: &'static [u16],
    handler: MethodRouter<AppState>,
) -> (Route, MethodRouter<AppState>) {
    (
        Route {
            method,
            path,
            summary,
            tag,
            access,
            body,
            ok,
            errors,
            query: &[],
        },
        handler,
    )
}

/// `r` with the query parameters `query` its handler reads.
pub(super) fn reading(
    mut r: (Route, MethodRouter<AppState>),
    query: &'static [QueryParam],
) -> (Route, MethodRouter<AppState>) {
    r.0.query = query;
    r
}

/// Marks a request let in only because the caller is assigned some of the instance's work
/// (not by a role): in a parallel stage that may be one branch's work, and a handler acting
/// on a stage must check that the stage it acts on is the caller's
/// ([`instances::check_own_work`]).
#[derive(Debug, Clone, Copy)]
pub struct AsAssignee;
