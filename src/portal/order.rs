//! The order: an application in seven steps, in the order the source
//! documents give (product; SIRET and e-mail; certificate; company type and
//! role; company; holder and legal representative; identity verification,
//! where sceau has the registration office's choice), then a summary. Each
//! step is a page of its own that works without JavaScript: the values of
//! the other steps travel in hidden fields, the step's own are checked when
//! it is left (the SIRET's check digits by the registry's own parser), and
//! the company is pre-filled when the RA already knows the SIREN. The
//! application itself is the registry's `apply`: a refusal brings the person
//! back to the step of the field it names.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::i18n::Texts;
use super::page::{self, Chrome, PageError};
use super::visit::Person;
use crate::error::ErrorKind;
use crate::ra::dossier::Application;
use crate::ra::identifiers::Siret;
use crate::ra::registry::RaError;
use crate::state::AppState;

/// Every field of the order, with its step (0: kept by the order itself,
/// `prefilled` saying the RA's own values for the SIREN were filled in).
const FIELDS: [(&str, u8); 21] = [
    ("prefilled", 0),
    ("policy", 1),
    ("siret", 2),
    ("email", 2),
    ("email_confirm", 2),
    ("seal_name", 3),
    ("validity_days", 3),
    ("legal_form", 4),
    ("legal_name", 5),
    ("street", 5),
    ("postal_code", 5),
    ("city", 5),
    ("rccs_given_name", 6),
    ("rccs_family_name", 6),
    ("rccs_phone", 6),
    ("rccs_language", 6),
    ("legal_given_name", 6),
    ("legal_family_name", 6),
    ("legal_email", 6),
    ("legal_language", 6),
    ("identity_method", 7),
];
/// The summary, after the seven steps.
const SUMMARY: u8 = 8;

#[derive(Template)]
#[template(path = "portal/order.html")]
struct OrderPage {
    chrome: Chrome,
    step: u8,
    values: HashMap<String, String>,
    /// The other steps' values, carried along.
    hidden: Vec<(String, String)>,
    /// (number, label) of the seven steps.
    steps: Vec<(u8, String)>,
    /// (id, title) of each policy.
    policies: Vec<(String, String)>,
    error: Option<String>,
    /// (label, value) of every answer, on the summary.
    summary: Vec<(String, String)>,
    /// (method, label) of each way of verifying the identity.
    identity_methods: Vec<(&'static str, String)>,
}

impl OrderPage {
    fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    fn checked(&self, name: &str, option: &str) -> bool {
        self.value(name) == option
    }
}

fn render(
    state: &AppState,
    person: &Person,
    step: u8,
    values: HashMap<String, String>,
    error: Option<String>,
) -> Response {
    let tr = person.visit.tr;
    let hidden = FIELDS
        .iter()
        .filter(|(_, s)| *s != step)
        .filter_map(|(name, _)| values.get(*name).map(|v| ((*name).to_owned(), v.clone())))
        .collect();
    let summary = if step == SUMMARY {
        FIELDS
            .iter()
            .filter(|(name, step)| *name != "email_confirm" && *step > 0)
            .map(|(name, _)| {
                (
                    tr.t(&format!("order-field-{name}")),
                    values.get(*name).cloned().unwrap_or_default(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page::html(
        status,
        &OrderPage {
            chrome: person.chrome(),
            step,
            values,
            hidden,
            steps: (1..=7)
                .map(|n| (n, tr.t(&format!("order-step-{n}"))))
                .collect(),
            policies: state
                .policies
                .iter()
                .map(|p| (p.id.clone(), p.title.clone()))
                .collect(),
            error,
            summary,
            identity_methods: ["face_to_face", "remote_provider", "eid_substantial"]
                .into_iter()
                .map(|m| (m, tr.t(&format!("order-identity-{m}"))))
                .collect(),
        },
    )
}

pub(super) async fn start(State(state): State<AppState>, person: Person) -> Response {
    let values = HashMap::from([
        (
            "rccs_language".to_owned(),
            person.visit.tr.lang.code().to_owned(),
        ),
        (
            "legal_language".to_owned(),
            person.visit.tr.lang.code().to_owned(),
        ),
        ("identity_method".to_owned(), "face_to_face".to_owned()),
    ]);
    render(&state, &person, 1, values, None)
}

/// What is wrong with the values of `step`, if anything.
fn check_step(tr: &Texts, step: u8, values: &HashMap<String, String>) -> Option<String> {
    let missing = FIELDS
        .iter()
        .filter(|(name, s)| *s == step && !matches!(*name, "validity_days" | "rccs_phone"))
        .find(|(name, _)| values.get(*name).is_none_or(|v| v.trim().is_empty()));
    if let Some((name, _)) = missing {
        return Some(tr.t1(
            "order-missing",
            "field",
            tr.t(&format!("order-field-{name}")),
        ));
    }
    match step {
        2 => {
            if let Err(e) = siret_of(values).parse::<Siret>() {
                return Some(e.to_string());
            }
            if values.get("email").map(|e| e.trim())
                != values.get("email_confirm").map(|e| e.trim())
            {
                return Some(tr.t("order-emails-differ"));
            }
            None
        }
        3 => values
            .get("validity_days")
            .filter(|v| !v.trim().is_empty() && v.trim().parse::<u32>().is_err())
            .map(|v| tr.t1("order-not-days", "value", v)),
        _ => None,
    }
}

/// The SIRET as typed, spaces left out.
fn siret_of(values: &HashMap<String, String>) -> String {
    values
        .get("siret")
        .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default()
}

/// The step a field the registry refused belongs to.
fn step_of(field: &str) -> u8 {
    match field {
        "policy" => 1,
        f if f.starts_with("organisation.sir") => 2,
        "seal_name" | "validity_days" => 3,
        "organisation.legal_form" => 4,
        f if f.starts_with("organisation") => 5,
        f if f.starts_with("rccs") || f.starts_with("legal_representative") => 6,
        f if f.starts_with("identity") => 7,
        _ => SUMMARY,
    }
}

fn application(values: &HashMap<String, String>) -> Result<Application, serde_json::Error> {
    let v = |name: &str| {
        values
            .get(name)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let optional = |name: &str| Some(v(name)).filter(|s| !s.is_empty());
    let siret = siret_of(values);
    // Face to face, an RA operator attests it; a provider's reference comes
    // once the provider has verified. Only the sign-in's own eID is
    // recorded with the application.
    let identity =
        (v("identity_method") == "eid_substantial").then(|| json!({ "method": "eid_substantial" }));
    serde_json::from_value(json!({
        "policy": v("policy"),
        "organisation": {
            "siren": siret.get(..9).unwrap_or_default(),
            "siret": siret,
            "legal_name": v("legal_name"),
            "legal_form": v("legal_form"),
            "street": v("street"),
            "postal_code": v("postal_code"),
            "city": v("city"),
        },
        "rccs": {
            "given_name": v("rccs_given_name"),
            "family_name": v("rccs_family_name"),
            "email": v("email"),
            "phone": optional("rccs_phone"),
            "language": v("rccs_language"),
        },
        "legal_representative": {
            "given_name": v("legal_given_name"),
            "family_name": v("legal_family_name"),
            "email": v("legal_email"),
            "language": v("legal_language"),
        },
        "seal_name": v("seal_name"),
        "validity_days": optional("validity_days").and_then(|d| d.parse::<u32>().ok()),
        "identity_verification": identity,
    }))
}

/// One step left: back, on to the next (its values checked), or, from the
/// summary, the application made.
pub(super) async fn step(
    State(state): State<AppState>,
    person: Person,
    Form(mut values): Form<HashMap<String, String>>,
) -> Response {
    let tr = person.visit.tr;
    let csrf = values.remove("csrf").unwrap_or_default();
    if !person.form_is_genuine(&csrf) {
        return person.error(PageError::new(
            ErrorKind::Forbidden,
            tr.t("error-form-token"),
        ));
    }
    let step = values
        .remove("step")
        .and_then(|s| s.parse::<u8>().ok())
        .filter(|s| (1..=SUMMARY).contains(s))
        .unwrap_or(1);
    let go = values.remove("go").unwrap_or_default();
    values.retain(|name, _| FIELDS.iter().any(|(f, _)| f == name));
    if go == "back" {
        return render(&state, &person, step.saturating_sub(1).max(1), values, None);
    }
    if step < SUMMARY {
        if let Some(error) = check_step(&tr, step, &values) {
            return render(&state, &person, step, values, Some(error));
        }
        if step == 2 {
            let siren = siret_of(&values).get(..9).unwrap_or_default().to_owned();
            if let Ok(Some(known)) = state.store.entity_by_siren(&siren).await {
                for (name, known) in [
                    ("legal_name", Some(known.legal_name)),
                    ("legal_form", known.legal_form),
                    ("street", known.street),
                    ("postal_code", known.postal_code),
                    ("city", known.city),
                ] {
                    if let Some(known) = known
                        && values.get(name).is_none_or(|v| v.trim().is_empty())
                    {
                        values.insert(name.to_owned(), known);
                        values.insert("prefilled".to_owned(), "yes".to_owned());
                    }
                }
            }
        }
        return render(&state, &person, step + 1, values, None);
    }
    let application = match application(&values) {
        Ok(application) => application,
        Err(e) => return render(&state, &person, SUMMARY, values, Some(e.to_string())),
    };
    match state.ra.apply(&person.principal, application).await {
        Ok(view) => page::see_other(&format!("/portal/requests/{}?done=order", view.id)),
        Err(RaError::Invalid { field, reason }) => {
            let label = field_name(&field).map_or_else(
                || field.clone(),
                |name| tr.t(&format!("order-field-{name}")),
            );
            let error = format!("{label}: {reason}");
            render(&state, &person, step_of(&field), values, Some(error))
        }
        Err(e) => person.error(PageError::from_error(&e, &tr)),
    }
}

/// The order's own name of a field the registry names, when it has one.
fn field_name(field: &str) -> Option<&str> {
    Some(match field {
        "organisation.siren" | "organisation.siret" => "siret",
        "organisation.legal_form" => "legal_form",
        "organisation.legal_name" => "legal_name",
        "organisation.street" => "street",
        "organisation.postal_code" => "postal_code",
        "organisation.city" => "city",
        "rccs.email" => "email",
        "rccs.given_name" => "rccs_given_name",
        "rccs.family_name" => "rccs_family_name",
        "legal_representative.email" => "legal_email",
        "legal_representative.given_name" => "legal_given_name",
        "legal_representative.family_name" => "legal_family_name",
        f if f.starts_with("identity") => "identity_method",
        "seal_name" | "validity_days" | "policy" => field,
        _ => return None,
    })
}
