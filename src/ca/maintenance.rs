//! The serving instance's CA upkeep: the OCSP responder's certificate renewed
//! before it expires, the time-stamping unit followed when another process
//! renews or revokes it. Runs over any state that shows the serving CA's
//! parts ([`ServingCa`]).

use super::engines::{ocsp_responder_key, time_stamping_unit};
use super::renewal::renew_ocsp_responder_in;
use super::termination::issuing_ca_terminating;
use super::{CaError, active_record, ceremony_file};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::hsm::Hsm;
use crate::journal::{Actor, Event, Journal};
use crate::pki::ceremony;
use crate::pki::ocsp::OcspResponder;
use crate::pki::tsa::Tsa;
use crate::store::Store;

/// What the upkeep needs of a serving instance (the application's state).
pub trait ServingCa: Clone + Send + Sync + 'static {
    fn settings(&self) -> &Settings;
    fn store(&self) -> &Store;
    fn hsm(&self) -> &Hsm;
    fn clock(&self) -> &SharedClock;
    fn journal(&self) -> &Journal;
    fn ocsp(&self) -> &OcspResponder;
    fn tsa(&self) -> &Tsa;
}

/// Retires the TSA once its unit's certificate is revoked (`sceau ca
/// terminate`, run by another process, revokes it).
pub(crate) async fn retire_if_revoked(
    tsa: &crate::pki::tsa::Tsa,
    store: &Store,
) -> Result<(), CaError> {
    if tsa.is_retired() {
        return Ok(());
    }
    let serial = tsa.unit().serial().to_owned();
    if !store
        .unrevoked_service_certificates()
        .await?
        .contains(&serial)
    {
        tsa.retire();
    }
    Ok(())
}

/// Every `tsa.clock_sync_check_secs`: checks the clock, retires the TSA once
/// its unit is revoked, and switches to the active unit when another process
/// renewed it.
pub(crate) async fn run_tsa_maintenance<S: ServingCa>(
    state: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = std::time::Duration::from_secs(state.settings().tsa.clock_sync_check_secs.max(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        state.tsa().check_clock().await;
        if let Err(error) = retire_if_revoked(state.tsa(), state.store()).await {
            tracing::error!(error = %crate::error::chain(&error), "reading the TSU's revocation failed");
        }
        // The HSM is asked for the key only when another process renewed the unit.
        let renewed = match active_record(state.store(), ceremony::KeyPurpose::Tsa).await {
            Ok(record) if record.serial != state.tsa().unit().serial() => {
                time_stamping_unit(&record, state.store(), state.hsm())
                    .await
                    .map(Some)
            }
            Ok(_) => Ok(None),
            Err(error) => Err(error),
        };
        match renewed {
            Ok(Some(unit)) => {
                tracing::info!(serial = %unit.serial(), "the TSA now signs with a new unit");
                state.tsa().replace_unit(unit);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(error = %crate::error::chain(&error), "reading the time-stamping unit failed");
            }
        }
    }
}

/// One maintenance pass: renews the responder certificate when it is within the
/// ceremony file's `ocsp.renew_before_days` of expiry (journaled as
/// `ocsp.responder_renewed`), and makes the responder use the active certificate
/// (which another instance may have renewed). Returns whether the key changed.
pub async fn maintain_ocsp_responder<S: ServingCa>(state: &S) -> Result<bool, CaError> {
    // The certificate would come from a CA whose key is gone or going.
    if issuing_ca_terminating(state.store()).await? {
        return Ok(false);
    }
    let (file, _) = ceremony_file(state.settings())?;
    let renew_before = std::time::Duration::from_secs(
        u64::from(file.ocsp.renew_before_days.unwrap_or(0)) * 86_400,
    );
    let current = ocsp_responder_key(state.store(), state.hsm()).await?;
    if current.not_after() <= state.clock().now() + renew_before {
        let record = renew_ocsp_responder_in(
            state.settings(),
            state.store(),
            state.hsm(),
            state.clock(),
            state.journal(),
            (
                Event::OcspResponderRenewed,
                Actor::Task("sceau ocsp maintenance"),
            ),
        )
        .await?;
        tracing::info!(serial = %record.serial, "OCSP responder certificate renewed");
    }
    let active = ocsp_responder_key(state.store(), state.hsm()).await?;
    if active.serial() == state.ocsp().key().serial() {
        return Ok(false);
    }
    tracing::info!(serial = %active.serial(), "OCSP responder now signs with a new certificate");
    state.ocsp().replace_key(active);
    Ok(true)
}

/// Runs [`maintain_ocsp_responder`] every `ocsp.maintenance_interval_secs` until stopped.
pub(crate) async fn run_ocsp_maintenance<S: ServingCa>(
    state: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every =
        std::time::Duration::from_secs(state.settings().ocsp.maintenance_interval_secs.max(1));
    loop {
        if let Err(error) = maintain_ocsp_responder(&state).await {
            tracing::error!(error = %crate::error::chain(&error), "OCSP responder maintenance failed");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}
