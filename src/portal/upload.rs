//! Evidence sent from a browser's file input (multipart/form-data): the
//! session's token must come before the file, the file is read in chunks
//! and refused past `ra.max_document_bytes` before the registry sees it,
//! and the registry recognises it by content and seals it in the vault.

use axum::extract::multipart::Field;
use axum::extract::{Multipart, Path, State};
use axum::response::Response;

use super::page::{self, PageError};
use super::requests::form_on_request;
use super::visit::Person;
use crate::error::ErrorKind;
use crate::state::AppState;

/// A field's text, at most `limit` bytes.
async fn small_text(field: Field<'_>, limit: usize) -> Option<String> {
    let bytes = read_capped(field, limit).await.ok()??;
    String::from_utf8(bytes).ok()
}

/// The field's bytes, `None` past `limit`.
async fn read_capped(
    mut field: Field<'_>,
    limit: usize,
) -> Result<Option<Vec<u8>>, axum::extract::multipart::MultipartError> {
    let mut content = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if content.len() + chunk.len() > limit {
            return Ok(None);
        }
        content.extend_from_slice(&chunk);
    }
    Ok(Some(content))
}

pub(super) async fn upload(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let tr = person.visit.tr;
    let malformed = || {
        person.error(PageError::new(
            ErrorKind::BadRequest,
            tr.t("error-upload-form"),
        ))
    };
    let limit = usize::try_from(state.settings.ra.max_document_bytes).unwrap_or(usize::MAX);
    let mut request = None;
    let mut kind = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return malformed(),
            Err(_) => return malformed(),
        };
        match field.name() {
            Some("csrf") => {
                let csrf = small_text(field, 256).await.unwrap_or_default();
                match form_on_request(&state, &person, &csrf, &id).await {
                    Ok(id) => request = Some(id),
                    Err(response) => return *response,
                }
            }
            Some("kind") => kind = small_text(field, 64).await,
            Some("file") => {
                // The token first: nothing is read for a forged form.
                let Some(request) = request else {
                    return person.error(PageError::new(
                        ErrorKind::Forbidden,
                        tr.t("error-form-token"),
                    ));
                };
                let content = match read_capped(field, limit).await {
                    Ok(Some(content)) if !content.is_empty() => content,
                    Ok(Some(_)) => return malformed(),
                    Ok(None) => {
                        return person.error(PageError::new(
                            ErrorKind::PayloadTooLarge,
                            tr.t1("error-upload-too-large", "limit", limit / (1024 * 1024)),
                        ));
                    }
                    Err(_) => return malformed(),
                };
                let kind = kind.unwrap_or_default();
                return match state
                    .ra
                    .add_document(&person.principal, request, &kind, content)
                    .await
                {
                    Ok(_) => page::see_other(&format!("/portal/requests/{request}?done=upload")),
                    Err(e) => person.error(PageError::from_error(&e, &tr)),
                };
            }
            _ => return malformed(),
        }
    }
}
