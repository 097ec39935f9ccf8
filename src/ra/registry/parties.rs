//! Who is a party to a request, counted on persons: a staff member never
//! reviews, verifies or approves a request of an organisation he holds a role
//! in, whose people include one of his sign-ins, or whose people he is by
//! name and birth date, whichever account he uses.

use time::Date;
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

use super::{RaError, Registry};
use crate::auth::Principal;
use crate::config::StaffMember;
use crate::ra::dossier::Dossier;
use crate::store::ra::RequestRow;

const PARTY: &str = "staff do not act on a request they are a party to: one they applied with, \
                     of an organisation they hold a role in, or naming them as one of its people";

impl Registry {
    /// Refuses a staff act on `row` by a principal who is not registered
    /// staff or who is a party to it.
    pub(super) async fn check_not_party(
        &self,
        principal: &Principal,
        row: &RequestRow,
        dossier: &Dossier,
    ) -> Result<(), RaError> {
        let Some(staff) = &principal.staff else {
            return Err(RaError::Forbidden(
                "staff acts are made by registered staff people: this sign-in is not one"
                    .to_owned(),
            ));
        };
        let party = || Err(RaError::Forbidden(PARTY.to_owned()));
        if principal.entity == Some(row.entity_id) || row.created_by == principal.id {
            return party();
        }
        let persons = self.inner.store.persons_of(row.entity_id).await?;
        for sign_in in &staff.sign_ins {
            if row.created_by == format!("oidc:{}#{}", sign_in.issuer, sign_in.subject) {
                return party();
            }
            let bound = persons.iter().any(|p| {
                p.identity
                    .as_ref()
                    .is_some_and(|(i, s)| *i == sign_in.issuer && *s == sign_in.subject)
            });
            let holds = self
                .inner
                .store
                .role_assignments(&sign_in.issuer, &sign_in.subject)
                .await?
                .iter()
                .any(|(_, entity)| *entity == Some(row.entity_id));
            if bound || holds {
                return party();
            }
        }
        let verified_birth = dossier
            .identity_verification
            .as_ref()
            .and_then(|v| v.birth_date());
        let named = [
            Some(dossier.rccs),
            Some(dossier.legal_representative),
            dossier.agent,
        ];
        for person in persons.iter().filter(|p| named.contains(&Some(p.id))) {
            let birth = (person.id == dossier.rccs)
                .then_some(verified_birth)
                .flatten();
            if same_person(staff, &person.given_name, &person.family_name, birth) {
                return party();
            }
        }
        Ok(())
    }
}

/// Whether a request's person may be this staff member: the same names (case,
/// accents, hyphens and spacing aside) and, when the request's verification
/// recorded it, the same birth date. A homonym whose birth date is unknown
/// counts as the same person: the other staff can act.
pub(super) fn same_person(
    staff: &StaffMember,
    given_name: &str,
    family_name: &str,
    birth_date: Option<Date>,
) -> bool {
    folded(&staff.given_name) == folded(given_name)
        && folded(&staff.family_name) == folded(family_name)
        && birth_date.is_none_or(|date| date == staff.birth_date)
}

/// A name as compared: decomposed, without its accents, lower case, its words
/// joined by one space.
fn folded(name: &str) -> String {
    let bare: String = name
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    bare.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn odile() -> StaffMember {
        StaffMember {
            id: uuid::Uuid::nil(),
            given_name: "Odile".to_owned(),
            family_name: "Martin-Lévêque".to_owned(),
            birth_date: date!(1979 - 05 - 02),
            sign_ins: Vec::new(),
        }
    }

    #[test]
    fn names_match_whatever_their_spelling_and_dates_decide_when_known() {
        let staff = odile();
        assert!(same_person(&staff, "ODILE", "martin leveque", None));
        assert!(same_person(
            &staff,
            " Odile ",
            "Martin–Lévêque",
            Some(date!(1979 - 05 - 02))
        ));
        assert!(!same_person(
            &staff,
            "Odile",
            "Martin-Lévêque",
            Some(date!(1985 - 01 - 01))
        ));
        assert!(!same_person(&staff, "Odette", "Martin-Lévêque", None));
    }
}
