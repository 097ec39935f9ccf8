//! The capacity a person's sign-in acts in: staff (a registered staff person
//! of a back-office provider, with staff roles only) or for an organisation,
//! never both.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use super::principal::Role;
use crate::config::{StaffMember, StaffRoster};

/// Settles `roles` and `entities` (what claims and assignments gave the
/// sign-in `issuer`/`subject`) to one capacity; returns the staff person
/// when the sign-in acts as staff. `back_office`: the provider is one of the
/// service's own. Staff roles claimed by a sign-in the roster does not name
/// are dropped (and logged).
pub fn settle(
    roster: &StaffRoster,
    back_office: bool,
    (issuer, subject): (&str, &str),
    roles: &mut BTreeSet<Role>,
    entities: &mut BTreeSet<Uuid>,
) -> Option<Arc<StaffMember>> {
    if !roles.iter().any(|role| role.is_staff()) {
        return None;
    }
    let staff = back_office
        .then(|| roster.member(issuer, subject))
        .flatten();
    if staff.is_some() {
        roles.retain(|role| !role.is_entity_bound());
        entities.clear();
    } else {
        tracing::warn!(
            issuer,
            subject,
            "staff roles claimed by a sign-in the staff roster does not name: ignored"
        );
        roles.retain(|role| !role.is_staff());
    }
    staff
}
