//! The notification outbox against a real SMTP server (aiosmtpd, writing a
//! Maildir) and the real `sceau serve` process: notices queue while the mail
//! server is down, survive a restart, and are all delivered once it is back; a
//! crash between the server's acceptance and the notice being marked sent
//! leads to a resend with the same Message-ID, and nothing is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sceau::store::notices::NewNotice;
use support::app::{Instance, Options};
use support::smtp::{SmtpSink, free_port, message_ids as delivered, wait_until};

fn notice(n: usize) -> NewNotice {
    NewNotice {
        kind: "test.notice".to_owned(),
        recipient: format!("rccs-{n}@example.org"),
        subject: format!("Avis {n} / Notice {n}"),
        body: format!("Votre demande {n} a été enregistrée.\nYour request {n} was recorded.\n"),
        sealed_secret: None,
    }
}

#[test]
fn notices_survive_an_outage_a_restart_and_a_crash_after_the_server_accepted() {
    let runtime = support::ca::runtime();
    let db = support::db::sqlite();
    let smtp_port = free_port();
    // aiosmtpd makes the Maildir (new/, cur/, tmp/) only if the folder is absent.
    let mail_root = tempfile::tempdir().unwrap();
    let maildir: PathBuf = mail_root.path().join("maildir");
    let mut instance = Instance::new(
        &db,
        Options {
            dev_auto_init: true,
            extra: format!(
                "[notify]\nenabled = true\nsmtp_port = {smtp_port}\nsecurity = \"none\"\n\
                 poll_interval_ms = 100\nmax_backoff_secs = 1\n"
            ),
            ..Default::default()
        },
    );
    instance.serve();
    let store = runtime.block_on(db.store());
    let enqueue = |n| {
        runtime
            .block_on(store.enqueue_notice(
                &notice(n),
                "sceau.invalid",
                time::OffsetDateTime::now_utc(),
            ))
            .unwrap()
    };
    let notices = |store: &sceau::store::Store| runtime.block_on(store.notices()).unwrap();

    // The mail server is down: notices queue and are retried, none is sent.
    let queued: Vec<_> = (1..=3).map(enqueue).collect();
    wait_until("three failed attempts each", || {
        notices(&store)
            .iter()
            .all(|n| n.attempts >= 2 && n.sent_at.is_none())
    });
    assert!(notices(&store).iter().all(|n| n.last_error.is_some()));

    // A restart with the server still down loses nothing.
    assert!(instance.terminate().success());
    assert_eq!(notices(&store).len(), 3);

    // The server is back, the process too: each notice arrives, with its own Message-ID.
    let sink = SmtpSink::start(smtp_port, &maildir);
    instance.serve();
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered(&maildir).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "three deliveries; outbox: {:?}; log: {}",
            notices(&store)
                .iter()
                .map(|n| (n.attempts, n.last_error.clone(), n.sent_at))
                .collect::<Vec<_>>(),
            std::fs::read_to_string(instance.log_path()).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut expected: Vec<String> = queued.iter().map(|n| n.message_id.clone()).collect();
    expected.sort();
    assert_eq!(delivered(&maildir), expected);
    wait_until("all marked sent", || {
        notices(&store).iter().all(|n| n.sent_at.is_some())
    });
    assert!(instance.terminate().success());

    // A crash right after the server's 250 and before marking the notice sent.
    let fourth = enqueue(4);
    instance.env.push((
        "SCEAU_TEST_FAILPOINT".to_owned(),
        "notify.after_send".to_owned(),
    ));
    let crashed = instance.run(&["serve"]);
    assert!(
        !crashed.status.success(),
        "the failpoint aborts the process: {}",
        support::app::stderr(&crashed)
    );
    let log = support::app::stderr(&crashed);
    assert_eq!(
        delivered(&maildir)
            .iter()
            .filter(|id| **id == fourth.message_id)
            .count(),
        1,
        "the server had accepted it: {log}"
    );
    let after_crash = notices(&store);
    assert!(
        after_crash
            .iter()
            .find(|n| n.id == fourth.id)
            .unwrap()
            .sent_at
            .is_none()
    );
    // Restarted without the failpoint: the notice is sent again, same Message-ID.
    instance.env.clear();
    instance.serve();
    wait_until("the resend", || {
        delivered(&maildir)
            .iter()
            .filter(|id| **id == fourth.message_id)
            .count()
            == 2
    });
    wait_until("every notice marked sent", || {
        notices(&store).iter().all(|n| n.sent_at.is_some())
    });
    assert!(instance.terminate().success());
    sink.stop();
    // Every delivery carries a known Message-ID: 3 + 2 copies of the fourth.
    assert_eq!(delivered(&maildir).len(), 5);
}
