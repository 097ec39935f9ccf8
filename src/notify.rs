//! Delivers the notification outbox over SMTP: at least once, each notice with
//! its own stable Message-ID, retrying with exponential backoff (capped) while
//! the relay is down, and never dropping one. A notice is marked sent only after
//! the relay accepted it, so a crash in between means a resend with the same
//! Message-ID, which mail systems and people can recognise. A notice's sealed
//! secret (an enrolment link's token) is opened only to build the message, and
//! erased with the marking.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};

use crate::clock::SharedClock;
use crate::config::{NotifySettings, SmtpSecurity};
use crate::journal::event::NoticeSent;
use crate::journal::{Actor, Event, Journal};
use crate::store::Store;
use crate::store::notices::{Notice, SECRET_PLACEHOLDER, secret_context};

/// Opens a notice's sealed secret with the key that sealed it (the HSM's):
/// given the sealed bytes and their context, the secret or why not.
pub type SecretOpener = Arc<
    dyn Fn(
            Vec<u8>,
            Vec<u8>,
        )
            -> Pin<Box<dyn Future<Output = Result<zeroize::Zeroizing<Vec<u8>>, String>> + Send>>
        + Send
        + Sync,
>;

/// Notices handled per pass over the outbox.
const BATCH: u32 = 32;

/// Names a failure point for crash tests: `SCEAU_TEST_FAILPOINT=notify.after_send`
/// aborts the process right after the relay accepted a notice and before it is
/// marked sent.
const FAILPOINT_AFTER_SEND: &str = "notify.after_send";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("SMTP configuration: {0}")]
    Config(String),
}

impl crate::error::HasErrorKind for NotifyError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Internal
    }
}

/// The outbox worker.
pub struct Notifier {
    store: Store,
    journal: Journal,
    clock: SharedClock,
    settings: NotifySettings,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    secrets: Option<SecretOpener>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("from", &self.from)
            .field("opens_secrets", &self.secrets.is_some())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    engine_constructor! {
        fn new(
            store: Store,
            journal: Journal,
            clock: SharedClock,
            settings: NotifySettings,
            secrets: Option<SecretOpener>,
        ) -> Result<Self, NotifyError> {
            let (from, transport) = transport(&settings)?;
            Ok(Self {
                store,
                journal,
                clock,
                settings,
                from,
                transport,
                secrets,
            })
        }
    }

    /// The body to send: the sealed secret, opened, in its placeholder's place.
    async fn body(&self, notice: &Notice) -> Result<zeroize::Zeroizing<String>, String> {
        let Some(sealed) = &notice.sealed_secret else {
            return Ok(zeroize::Zeroizing::new(notice.body.clone()));
        };
        let opener = self
            .secrets
            .as_ref()
            .ok_or("this notice carries a sealed secret and nothing here can open it")?;
        let secret = opener(sealed.clone(), secret_context(&notice.recipient)).await?;
        let secret = std::str::from_utf8(&secret).map_err(|_| "the secret is not text")?;
        Ok(zeroize::Zeroizing::new(
            notice.body.replace(SECRET_PLACEHOLDER, secret),
        ))
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        loop {
            if let Err(error) = self.deliver_due().await {
                tracing::warn!(%error, "reading the notification outbox failed");
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    }

    /// One pass: every due notice gets one attempt.
    pub async fn deliver_due(&self) -> Result<(), crate::store::StoreError> {
        let now = time::OffsetDateTime::from(self.clock.now());
        for notice in self.store.due_notices(now, BATCH).await? {
            match self.send(&notice).await {
                Ok(()) => {
                    if std::env::var("SCEAU_TEST_FAILPOINT").as_deref() == Ok(FAILPOINT_AFTER_SEND)
                    {
                        tracing::error!(notice = %notice.id, "failpoint {FAILPOINT_AFTER_SEND}: aborting");
                        std::process::abort();
                    }
                    let now = time::OffsetDateTime::from(self.clock.now());
                    // Journaled first: if marking fails, the resend is expected.
                    let journaled = self
                        .journal
                        .append(
                            &Actor::Service,
                            Event::NoticeSent(NoticeSent {
                                notice_id: notice.id,
                                kind: notice.kind.clone(),
                                recipient: notice.recipient.clone(),
                                message_id: notice.message_id.clone(),
                                attempt: notice.attempts + 1,
                            }),
                        )
                        .await;
                    if let Err(error) = journaled {
                        tracing::error!(%error, notice = %notice.id, "journaling a sent notice failed; it will be sent again");
                        continue;
                    }
                    self.store.mark_notice_sent(notice.id, now).await?;
                }
                Err(reason) => {
                    let wait = backoff(notice.attempts, self.settings.max_backoff_secs);
                    let next = time::OffsetDateTime::from(self.clock.now()) + wait;
                    tracing::warn!(notice = %notice.id, attempts = notice.attempts + 1, retry_in_secs = wait.as_secs(), %reason, "notice not delivered");
                    self.store.notice_failed(notice.id, &reason, next).await?;
                }
            }
        }
        Ok(())
    }

    async fn send(&self, notice: &Notice) -> Result<(), String> {
        let to: Mailbox = notice
            .recipient
            .parse()
            .map_err(|e| format!("recipient {:?}: {e}", notice.recipient))?;
        let body = self.body(notice).await?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(notice.subject.clone())
            .message_id(Some(format!("<{}>", notice.message_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Checks the settings (`sceau config check`) and builds the SMTP client.
pub fn transport(
    settings: &NotifySettings,
) -> Result<(Mailbox, AsyncSmtpTransport<Tokio1Executor>), NotifyError> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| NotifyError::Config(format!("notify.from {:?}: {e}", settings.from)))?;
    let host = settings.smtp_host.as_str();
    let builder = match settings.security {
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|e| NotifyError::Config(e.to_string()))?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(|e| NotifyError::Config(e.to_string()))?,
    };
    let transport = builder
        .port(settings.smtp_port)
        .timeout(Some(Duration::from_secs(30)))
        .build();
    Ok((from, transport))
}

/// 2^attempts seconds, at most `max_secs`.
fn backoff(attempts: u32, max_secs: u64) -> Duration {
    let secs = 1u64.checked_shl(attempts.min(30)).unwrap_or(u64::MAX);
    Duration::from_secs(secs.min(max_secs.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0, 3600), Duration::from_secs(1));
        assert_eq!(backoff(3, 3600), Duration::from_secs(8));
        assert_eq!(backoff(40, 3600), Duration::from_secs(3600));
    }
}
