//! The staff roster: the trust service's registered people in trusted roles,
//! each with the identity attributes a conflict check compares and the
//! back-office sign-ins that are his.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::Date;
use uuid::Uuid;

/// One sign-in: an issuer and the subject it names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub issuer: String,
    pub subject: String,
}

/// A registered staff person. Only the id is ever serialised: the name and
/// the birth date are compared, not shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffMember {
    pub id: Uuid,
    #[serde(skip)]
    pub given_name: String,
    #[serde(skip)]
    pub family_name: String,
    #[serde(skip)]
    pub birth_date: Date,
    /// Every back-office sign-in of this person.
    #[serde(skip)]
    pub sign_ins: Vec<SignIn>,
}

/// The roster as the configuration declares it (`[[auth.staff]]`), checked
/// once at load: unique ids, unique sign-ins, real dates, names present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<StaffEntry>")]
pub struct StaffRoster {
    members: Vec<Arc<StaffMember>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffEntry {
    id: Uuid,
    given_name: String,
    family_name: String,
    /// `YYYY-MM-DD`, as on the identity document.
    birth_date: String,
    sign_ins: Vec<SignIn>,
}

impl TryFrom<Vec<StaffEntry>> for StaffRoster {
    type Error = String;

    fn try_from(entries: Vec<StaffEntry>) -> Result<Self, String> {
        let day = time::macros::format_description!("[year]-[month]-[day]");
        let mut ids = BTreeSet::new();
        let mut sign_ins = BTreeSet::new();
        let mut members = Vec::with_capacity(entries.len());
        for entry in entries {
            if !ids.insert(entry.id) {
                return Err(format!("auth.staff: id {} appears twice", entry.id));
            }
            if entry.given_name.trim().is_empty() || entry.family_name.trim().is_empty() {
                return Err(format!(
                    "auth.staff {}: given_name and family_name are required",
                    entry.id
                ));
            }
            let birth_date = Date::parse(&entry.birth_date, day).map_err(|_| {
                format!(
                    "auth.staff {}: birth_date {:?} is not a date YYYY-MM-DD",
                    entry.id, entry.birth_date
                )
            })?;
            if entry.sign_ins.is_empty() {
                return Err(format!(
                    "auth.staff {}: at least one sign-in is required",
                    entry.id
                ));
            }
            for sign_in in &entry.sign_ins {
                if !sign_ins.insert(sign_in.clone()) {
                    return Err(format!(
                        "auth.staff: the sign-in {}#{} belongs to two people",
                        sign_in.issuer, sign_in.subject
                    ));
                }
            }
            members.push(Arc::new(StaffMember {
                id: entry.id,
                given_name: entry.given_name.trim().to_owned(),
                family_name: entry.family_name.trim().to_owned(),
                birth_date,
                sign_ins: entry.sign_ins,
            }));
        }
        Ok(Self { members })
    }
}

impl StaffRoster {
    /// The staff person a sign-in belongs to, if any.
    pub fn member(&self, issuer: &str, subject: &str) -> Option<Arc<StaffMember>> {
        self.members
            .iter()
            .find(|member| {
                member
                    .sign_ins
                    .iter()
                    .any(|s| s.issuer == issuer && s.subject == subject)
            })
            .cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds a person the configuration did not list (the development
    /// provider's demo staff), unless his id or one of his sign-ins is
    /// already someone's.
    pub fn add(&mut self, member: StaffMember) {
        let taken = self
            .members
            .iter()
            .any(|m| m.id == member.id || m.sign_ins.iter().any(|s| member.sign_ins.contains(s)));
        if !taken {
            self.members.push(Arc::new(member));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u128, subject: &str, birth: &str) -> StaffEntry {
        StaffEntry {
            id: Uuid::from_u128(id),
            given_name: "Odile".to_owned(),
            family_name: "Martin".to_owned(),
            birth_date: birth.to_owned(),
            sign_ins: vec![SignIn {
                issuer: "https://idp.test".to_owned(),
                subject: subject.to_owned(),
            }],
        }
    }

    #[test]
    fn the_roster_is_checked_at_load() {
        let roster = StaffRoster::try_from(vec![entry(1, "op-1", "1979-05-02")]).unwrap();
        assert_eq!(
            roster.member("https://idp.test", "op-1").unwrap().id,
            Uuid::from_u128(1)
        );
        assert!(roster.member("https://idp.test", "op-2").is_none());
        let twice = StaffRoster::try_from(vec![
            entry(1, "a", "1979-05-02"),
            entry(1, "b", "1979-05-02"),
        ]);
        assert!(twice.unwrap_err().contains("appears twice"));
        let shared = StaffRoster::try_from(vec![
            entry(1, "a", "1979-05-02"),
            entry(2, "a", "1979-05-02"),
        ]);
        assert!(shared.unwrap_err().contains("belongs to two people"));
        let bad = StaffRoster::try_from(vec![entry(1, "a", "1979-02-30")]);
        assert!(bad.unwrap_err().contains("is not a date"));
    }
}
