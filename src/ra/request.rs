//! The certificate request's life (seeds 000 §8, 002): the states, the moves,
//! which role may make each, and the two distinct approvals a CA-managed request
//! needs before the CA issues. Pure: the RA's handlers load a request, ask this
//! module, and store what it returns.

use std::collections::BTreeSet;
use std::fmt;

use crate::auth::Role;
use crate::error::{ErrorKind, HasErrorKind};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Draft,
    Submitted,
    InReview,
    NeedsInformation,
    Validated,
    Issued,
    /// The RCCS accepted the certificate: the credential may seal.
    Accepted,
    /// The RCCS refused the certificate: it is revoked.
    Refused,
    /// The RA turned the request down; final.
    Rejected,
}

impl RequestState {
    pub const ALL: [RequestState; 9] = [
        Self::Draft,
        Self::Submitted,
        Self::InReview,
        Self::NeedsInformation,
        Self::Validated,
        Self::Issued,
        Self::Accepted,
        Self::Refused,
        Self::Rejected,
    ];

    /// Whether the RA validated the request: from then on it is the
    /// organisation's, no longer its applicant's.
    pub fn is_past_validation(self) -> bool {
        matches!(
            self,
            Self::Validated | Self::Issued | Self::Accepted | Self::Refused
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::InReview => "in_review",
            Self::NeedsInformation => "needs_information",
            Self::Validated => "validated",
            Self::Issued => "issued",
            Self::Accepted => "accepted",
            Self::Refused => "refused",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Accepted | Self::Refused | Self::Rejected)
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What someone asks to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Move {
    Submit,
    StartReview,
    RequestInformation,
    Approve,
    Reject,
    /// Made by the RA itself right after validation, never by a caller.
    Issue,
    Accept,
    Refuse,
}

impl Move {
    pub const ALL: [Move; 8] = [
        Self::Submit,
        Self::StartReview,
        Self::RequestInformation,
        Self::Approve,
        Self::Reject,
        Self::Issue,
        Self::Accept,
        Self::Refuse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::StartReview => "start_review",
            Self::RequestInformation => "request_information",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Issue => "issue",
            Self::Accept => "accept",
            Self::Refuse => "refuse",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == text)
    }

    /// The roles that may make this move; `Issue` has none (the RA makes it).
    pub fn roles(self) -> &'static [Role] {
        match self {
            Self::Submit | Self::Accept | Self::Refuse => &[Role::Rccs],
            Self::StartReview | Self::RequestInformation | Self::Approve | Self::Reject => {
                &[Role::RaOperator]
            }
            Self::Issue => &[],
        }
    }

    /// The states this move leaves from.
    fn from(self) -> &'static [RequestState] {
        use RequestState::*;
        match self {
            Self::Submit => &[Draft, NeedsInformation],
            Self::StartReview => &[Submitted],
            Self::RequestInformation | Self::Approve | Self::Reject => &[InReview],
            Self::Issue => &[Validated],
            Self::Accept | Self::Refuse => &[Issued],
        }
    }
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error(
        "a request in state {state} cannot be moved by {attempted}; allowed here: {}",
        names(allowed)
    )]
    NotAllowed {
        state: RequestState,
        attempted: Move,
        allowed: Vec<Move>,
    },
    #[error("this operator has already approved this request; a second, distinct operator must")]
    SameOperator,
    #[error(
        "the operator who verified the applicant's identity cannot give the final approval: \
         another operator must"
    )]
    VerifierApprovesLast,
}

fn names(moves: &[Move]) -> String {
    if moves.is_empty() {
        return "none".to_owned();
    }
    moves
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl HasErrorKind for MoveError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
    }
}

/// A request's state and the approvals gathered in review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub state: RequestState,
    /// Principal ids of the operators who approved, each once.
    pub approvals: BTreeSet<String>,
    /// How many distinct operators must approve (2 for CA-managed keys).
    pub approvals_needed: usize,
    /// The staff member who attested the identity face to face, if one did.
    /// Whatever the policy, validation needs two distinct staff people among
    /// him and the approvers, and he never gives the final approval.
    pub identity_verifier: Option<String>,
}

impl Lifecycle {
    pub fn new(approvals_needed: usize) -> Self {
        Self {
            state: RequestState::Draft,
            approvals: BTreeSet::new(),
            approvals_needed: approvals_needed.max(1),
            identity_verifier: None,
        }
    }

    /// The moves `roles` may make from the current state.
    pub fn allowed_moves(&self, roles: &BTreeSet<Role>) -> Vec<Move> {
        Move::ALL
            .into_iter()
            .filter(|m| m.from().contains(&self.state))
            .filter(|m| m.roles().iter().any(|r| roles.contains(r)))
            .collect()
    }

    /// Applies `attempted` by a principal with `roles` and id `principal`;
    /// returns the new state. `Issue` is only for the RA (`roles` ignored).
    pub fn apply(
        &mut self,
        attempted: Move,
        principal: &str,
        roles: &BTreeSet<Role>,
    ) -> Result<RequestState, MoveError> {
        let by_role =
            attempted == Move::Issue || attempted.roles().iter().any(|r| roles.contains(r));
        if !attempted.from().contains(&self.state) || !by_role {
            return Err(MoveError::NotAllowed {
                state: self.state,
                attempted,
                allowed: self.allowed_moves(roles),
            });
        }
        use RequestState::*;
        self.state = match attempted {
            Move::Submit => Submitted,
            Move::StartReview => InReview,
            Move::RequestInformation => {
                // Information changes the file: approvals start again.
                self.approvals.clear();
                NeedsInformation
            }
            Move::Approve => {
                if self.approvals.contains(principal) {
                    return Err(MoveError::SameOperator);
                }
                let mut approvals = self.approvals.clone();
                approvals.insert(principal.to_owned());
                let mut staff = approvals.clone();
                staff.extend(self.identity_verifier.iter().cloned());
                let last = approvals.len() >= self.approvals_needed && staff.len() >= 2;
                if last && self.identity_verifier.as_deref() == Some(principal) {
                    return Err(MoveError::VerifierApprovesLast);
                }
                self.approvals = approvals;
                if last { Validated } else { InReview }
            }
            Move::Reject => Rejected,
            Move::Issue => Issued,
            Move::Accept => Accepted,
            Move::Refuse => Refused,
        };
        Ok(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(role: Role) -> BTreeSet<Role> {
        BTreeSet::from([role])
    }

    #[test]
    fn the_whole_path_with_two_distinct_approvals() {
        let mut request = Lifecycle::new(2);
        let rccs = roles(Role::Rccs);
        let operator = roles(Role::RaOperator);
        assert_eq!(
            request.apply(Move::Submit, "rccs", &rccs),
            Ok(RequestState::Submitted)
        );
        assert_eq!(
            request.apply(Move::StartReview, "op-1", &operator),
            Ok(RequestState::InReview)
        );
        assert_eq!(
            request.apply(Move::RequestInformation, "op-1", &operator),
            Ok(RequestState::NeedsInformation)
        );
        assert_eq!(
            request.apply(Move::Submit, "rccs", &rccs),
            Ok(RequestState::Submitted)
        );
        request.apply(Move::StartReview, "op-1", &operator).unwrap();
        assert_eq!(
            request.apply(Move::Approve, "op-1", &operator),
            Ok(RequestState::InReview)
        );
        assert_eq!(
            request.apply(Move::Approve, "op-1", &operator),
            Err(MoveError::SameOperator),
            "the same operator twice"
        );
        assert_eq!(
            request.apply(Move::Approve, "op-2", &operator),
            Ok(RequestState::Validated)
        );
        assert_eq!(
            request.apply(Move::Issue, "ra", &BTreeSet::new()),
            Ok(RequestState::Issued)
        );
        assert_eq!(
            request.apply(Move::Accept, "rccs", &rccs),
            Ok(RequestState::Accepted)
        );
        assert!(request.state.is_final());
    }

    #[test]
    fn asking_for_information_resets_the_approvals() {
        let mut request = Lifecycle::new(2);
        let operator = roles(Role::RaOperator);
        request.state = RequestState::InReview;
        request.apply(Move::Approve, "op-1", &operator).unwrap();
        request
            .apply(Move::RequestInformation, "op-2", &operator)
            .unwrap();
        assert!(request.approvals.is_empty());
    }

    #[test]
    fn two_staff_people_and_the_verifier_never_last() {
        let operator = roles(Role::RaOperator);
        // One approval needed, no staff verifier: one operator is not enough.
        let mut request = Lifecycle::new(1);
        request.state = RequestState::InReview;
        assert_eq!(
            request.apply(Move::Approve, "op-1", &operator),
            Ok(RequestState::InReview)
        );
        assert_eq!(
            request.apply(Move::Approve, "op-2", &operator),
            Ok(RequestState::Validated)
        );
        // The verifier's approval completes nothing; another's does.
        let mut request = Lifecycle::new(1);
        request.state = RequestState::InReview;
        request.identity_verifier = Some("op-1".to_owned());
        assert_eq!(
            request.apply(Move::Approve, "op-1", &operator),
            Ok(RequestState::InReview)
        );
        assert_eq!(
            request.apply(Move::Approve, "op-2", &operator),
            Ok(RequestState::Validated)
        );
        // Two needed: the verifier may approve first, never last.
        let mut request = Lifecycle::new(2);
        request.state = RequestState::InReview;
        request.identity_verifier = Some("op-1".to_owned());
        request.apply(Move::Approve, "op-2", &operator).unwrap();
        assert_eq!(
            request.apply(Move::Approve, "op-1", &operator),
            Err(MoveError::VerifierApprovesLast)
        );
        assert_eq!(request.approvals.len(), 1, "a refused approval is not kept");
        assert_eq!(request.state, RequestState::InReview);
    }

    /// Every role × move × state: a move succeeds exactly when the state allows
    /// it and the role may make it; otherwise the error lists the allowed moves.
    #[test]
    fn role_move_state_matrix() {
        for state in RequestState::ALL {
            for role in Role::ALL {
                for attempted in Move::ALL.into_iter().filter(|m| *m != Move::Issue) {
                    let mut request = Lifecycle::new(1);
                    request.state = state;
                    let roles = roles(role);
                    let expected =
                        attempted.from().contains(&state) && attempted.roles().contains(&role);
                    match request.apply(attempted, "someone", &roles) {
                        Ok(_) => assert!(expected, "{state} {role} {attempted} should fail"),
                        Err(MoveError::NotAllowed {
                            state: at, allowed, ..
                        }) => {
                            assert!(!expected, "{state} {role} {attempted} should pass");
                            assert_eq!(at, state);
                            assert_eq!(
                                allowed,
                                Lifecycle {
                                    state,
                                    ..Lifecycle::new(1)
                                }
                                .allowed_moves(&roles)
                            );
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
    }

    #[test]
    fn rejected_is_final_and_says_so() {
        let mut request = Lifecycle::new(1);
        request.state = RequestState::Rejected;
        let error = request
            .apply(Move::Submit, "rccs", &roles(Role::Rccs))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "a request in state rejected cannot be moved by submit; allowed here: none"
        );
    }
}
