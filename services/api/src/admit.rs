//! Letting a call in, whichever door it comes through: its key (role, limits), the groups a
//! trusted front end forwards for its user, and so whose documents the call reaches.

use rag_auth::{Action, Gate, Permit};
use rag_store::{DEFAULT_TENANT, Visibility};

use crate::ApiError;

/// Request metadata (gRPC) or header (HTTP) in which a trusted front end names the asking
/// user's groups: "hr,eng".
pub const GROUPS_HEADER: &str = "x-rag-groups";

/// Whose documents a call reaches: its key's tenant, and what of it the key (or the user a
/// trusted key speaks for) may read.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    pub visibility: Visibility,
}

/// A call let in: who it is, and the permit that counts it against its key's in-flight limit
/// until dropped.
pub struct Admission {
    pub caller: Caller,
    /// `None` when keys are not checked.
    pub key_id: Option<String>,
    pub permit: Option<Permit>,
}

/// Lets a call in if `key` may perform `action` and is within its limits. `groups` is the
/// `x-rag-groups` value a front end sent (`Err` for one that is not text).
pub fn admit(
    gate: &Gate,
    key: Option<&str>,
    groups: Option<Result<&str, ()>>,
    action: Action,
) -> Result<Admission, ApiError> {
    let forwarded = match groups {
        None => None,
        Some(Err(())) => return Err(ApiError::invalid(GROUPS_HEADER, "must be ASCII")),
        Some(Ok(value)) => Some(
            rag_auth::parse_groups(value)
                .map_err(|reason| ApiError::invalid(GROUPS_HEADER, reason))?,
        ),
    };
    let Some(admitted) = gate.admit(key, action)? else {
        // No keys checked (local use): the default tenant; a front end's header is taken
        // at its word, so permissions can be tried out locally.
        return Ok(Admission {
            caller: Caller {
                tenant: DEFAULT_TENANT.to_owned(),
                visibility: forwarded.map_or(Visibility::All, Visibility::Groups),
            },
            key_id: None,
            permit: None,
        });
    };
    let principal = admitted.principal;
    let visibility = principal.reach(forwarded)?;
    Ok(Admission {
        caller: Caller {
            tenant: principal.tenant,
            visibility,
        },
        key_id: Some(principal.key_id),
        permit: Some(admitted.permit),
    })
}

/// The key in an `authorization: Bearer <key>` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// A rebuild of the store (Reindex) makes, and may drop, the store of every tenant: only the
/// default tenant's admins may ask for one.
pub fn may_rebuild(caller: &Caller) -> Result<(), ApiError> {
    if caller.tenant == DEFAULT_TENANT {
        return Ok(());
    }
    Err(ApiError::NotForTenant(format!(
        "rebuilding the store concerns every tenant: only an admin key of tenant \
         {DEFAULT_TENANT:?} may (this one is of {:?})",
        caller.tenant
    )))
}
