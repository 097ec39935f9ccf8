//! The root's CRL (the ARL): a step of the CA operations, since it needs the
//! root token, which may be offline between ceremonies.

use super::{CaError, open_journal};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::hsm::Hsm;
use crate::journal::Actor;
use crate::pki::crl;
use crate::store::Store;

/// Issues the root's CRL (the ARL) with the root token, stores it and journals
/// it (`arl.published`): a ceremony step, since the root token may be offline.
pub async fn issue_arl(
    settings: &Settings,
    store: &Store,
    hsm: &Hsm,
    clock: &SharedClock,
    actor: &Actor,
) -> Result<crl::Published, CaError> {
    let journal = open_journal(settings, store, hsm, clock).await?;
    let published = crl::publish_arl(store, &journal, hsm, clock, &settings.crl, actor).await;
    journal.shutdown().await?;
    Ok(published?)
}
