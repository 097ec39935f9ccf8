//! Wiring: builds the application state from settings and runs the HTTP server.
// SKELETON: replaced by the real implementation.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::hsm::Hsm;
use crate::pki::publication::Publication;
use crate::store::Store;

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub store: Store,
    pub hsm: Arc<Hsm>,
    pub publication: Publication,
}
