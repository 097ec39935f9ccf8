//! An evidence document of a request, for the RA's operators: read through
//! the registry (which checks the reader and journals the reading), sent as
//! the API sends it (an attachment no cache keeps, no browser renders).

use axum::extract::{Path, State};
use axum::response::Response;
use uuid::Uuid;

use super::page::PageError;
use super::visit::Person;
use crate::api::ra::evidence_attachment;
use crate::error::ErrorKind;
use crate::state::AppState;

pub(super) async fn download(
    State(state): State<AppState>,
    person: Person,
    Path((id, document)): Path<(String, String)>,
) -> Response {
    let tr = person.visit.tr;
    let (Ok(id), Ok(document)) = (Uuid::parse_str(&id), Uuid::parse_str(&document)) else {
        return person.error(PageError::new(
            ErrorKind::NotFound,
            tr.t("error-no-document"),
        ));
    };
    match state
        .ra
        .document_content(&person.principal, id, document)
        .await
    {
        Ok((media_type, content)) => evidence_attachment(&media_type, content, document),
        Err(e) => person.error(PageError::from_error(&e, &tr)),
    }
}
