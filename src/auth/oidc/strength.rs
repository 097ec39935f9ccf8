//! When a person's token is strong authentication: an `acr` the provider's
//! registration accepts, or a second factor in `amr`.

use super::{Claims, OidcError, Registration, refused};

/// `amr` values (RFC 8176) that show a second factor or a hardware key.
const SECOND_FACTORS: [&str; 10] = [
    "mfa", "otp", "hwk", "sms", "sc", "fpt", "face", "iris", "retina", "vbm",
];

/// A person's token is strong with an accepted `acr` or a second factor in `amr`.
pub(super) fn strongly_authenticated(
    claims: &Claims,
    registration: &Registration,
) -> Result<(), OidcError> {
    let strong = claims
        .acr
        .as_ref()
        .is_some_and(|acr| registration.acr_values.iter().any(|a| a == acr))
        || claims
            .amr
            .iter()
            .any(|method| SECOND_FACTORS.contains(&method.as_str()));
    if strong {
        Ok(())
    } else {
        Err(refused(
            "strong authentication is required: the token shows no second factor (amr) nor an accepted acr",
        ))
    }
}
