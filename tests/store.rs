//! The store on SQLite and PostgreSQL: durable settings on every pooled connection,
//! migrations, and the entity and seal credential repositories.
#![expect(
    clippy::unwrap_used,
    reason = "a test or bench stops at the first failure, with its cause"
)]

mod support;

use sceau::config::{DatabaseBackend, TokenRole};
use sceau::error::{ErrorKind, HasErrorKind};
use sceau::revocation::Reason;
use sceau::store::auth::ActivationBinding;
use sceau::store::entities::{CredentialStatus, KeyReference, NewEntity};
use support::db::{TestDb, on_both_backends};
use time::OffsetDateTime;

async fn every_pooled_connection_is_durable(db: TestDb) {
    let store = db.store().await;
    let settings = db.settings();
    let values = store
        .durability_settings(settings.max_connections as usize)
        .await
        .unwrap();
    assert_eq!(values.len(), settings.max_connections as usize);
    let expected = match store.backend() {
        DatabaseBackend::Sqlite => "2", // FULL
        DatabaseBackend::Postgres => "on",
    };
    assert!(values.iter().all(|v| v == expected), "{values:?}");
    store.ping().await.unwrap();
    store.close().await;
}
on_both_backends!(
    every_pooled_connection_is_durable_on_sqlite,
    every_pooled_connection_is_durable_on_postgres,
    every_pooled_connection_is_durable
);

async fn migrations_run_once_and_reconnecting_keeps_data(db: TestDb) {
    let store = db.store().await;
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let entity = store.insert_entity(&acme(), now).await.unwrap();
    store.close().await;
    let again = db.store().await;
    assert_eq!(again.entity(entity.id).await.unwrap(), entity);
}
on_both_backends!(
    migrations_run_once_and_reconnecting_keeps_data_on_sqlite,
    migrations_run_once_and_reconnecting_keeps_data_on_postgres,
    migrations_run_once_and_reconnecting_keeps_data
);

fn acme() -> NewEntity {
    NewEntity {
        legal_name: "ACME SAS".to_owned(),
        organization_identifier: "NTRFR-552100554".to_owned(),
        country: "FR".to_owned(),
    }
}

async fn entities_and_credentials_round_trip(db: TestDb) {
    let store = db.store().await;
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let entity = store.insert_entity(&acme(), now).await.unwrap();
    assert_eq!(store.entity(entity.id).await.unwrap(), entity);
    assert_eq!(store.entities().await.unwrap(), vec![entity.clone()]);

    let duplicate = store.insert_entity(&acme(), now).await.unwrap_err();
    assert_eq!(duplicate.kind(), ErrorKind::Conflict, "{duplicate}");

    let missing = store.entity(uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");

    let key = KeyReference {
        token_role: TokenRole::Seal,
        key_id: vec![0xde, 0xad, 0xbe, 0xef],
        key_label: "seal-acme-1".to_owned(),
    };
    let credential = store
        .insert_seal_credential(entity.id, &key, now)
        .await
        .unwrap();
    assert_eq!(credential.status, CredentialStatus::Pending);
    assert_eq!(
        store.seal_credential(credential.id).await.unwrap(),
        credential
    );

    let later = now + time::Duration::hours(1);
    store
        .set_seal_credential_certificate(credential.id, b"\x30\x03\x02\x01\x01", later)
        .await
        .unwrap();
    store
        .set_seal_credential_status(credential.id, CredentialStatus::Active, later)
        .await
        .unwrap();
    let updated = store.seal_credential(credential.id).await.unwrap();
    assert_eq!(updated.status, CredentialStatus::Active);
    assert_eq!(
        updated.certificate.as_deref(),
        Some(&b"\x30\x03\x02\x01\x01"[..])
    );
    assert_eq!(updated.updated_at, later);
    assert_eq!(updated.created_at, now);
    assert_eq!(updated.key, key);
    assert_eq!(
        store.seal_credentials_of(entity.id).await.unwrap(),
        vec![updated]
    );

    let same_key = store
        .insert_seal_credential(entity.id, &key, now)
        .await
        .unwrap_err();
    assert_eq!(same_key.kind(), ErrorKind::Conflict, "{same_key}");
    let orphan = store
        .insert_seal_credential(
            uuid::Uuid::new_v4(),
            &KeyReference {
                key_id: vec![1],
                ..key.clone()
            },
            now,
        )
        .await
        .unwrap_err();
    assert_eq!(orphan.kind(), ErrorKind::Unprocessable, "{orphan}");
    let unknown = store
        .set_seal_credential_status(uuid::Uuid::new_v4(), CredentialStatus::Revoked, now)
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound, "{unknown}");
}
on_both_backends!(
    entities_and_credentials_round_trip_on_sqlite,
    entities_and_credentials_round_trip_on_postgres,
    entities_and_credentials_round_trip
);

async fn the_outbox_keeps_every_notice_until_sent(db: TestDb) {
    use sceau::store::notices::NewNotice;
    let store = db.store().await;
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let notice = NewNotice {
        kind: "request.acknowledged".to_owned(),
        recipient: "rccs@example.org".to_owned(),
        subject: "Demande reçue / Request received".to_owned(),
        body: "…".to_owned(),
        sealed_secret: None,
    };
    let first = store
        .enqueue_notice(&notice, "sceau.test", now)
        .await
        .unwrap();
    let second = store
        .enqueue_notice(&notice, "sceau.test", now)
        .await
        .unwrap();
    assert_ne!(first.message_id, second.message_id);
    assert!(first.message_id.ends_with("@sceau.test"));
    assert_eq!(store.due_notices(now, 10).await.unwrap().len(), 2);
    // A failure moves the next attempt; the notice stays, counted.
    let later = now + time::Duration::seconds(60);
    store
        .notice_failed(first.id, "connection refused", later)
        .await
        .unwrap();
    let due: Vec<_> = store.due_notices(now, 10).await.unwrap();
    assert_eq!(due.iter().map(|n| n.id).collect::<Vec<_>>(), [second.id]);
    let due_later = store.due_notices(later, 10).await.unwrap();
    assert_eq!(due_later.len(), 2);
    let retried = due_later.iter().find(|n| n.id == first.id).unwrap();
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.last_error.as_deref(), Some("connection refused"));
    assert_eq!(
        retried.message_id, first.message_id,
        "the same Message-ID every time"
    );
    // Sent notices are kept, and never due again.
    store.mark_notice_sent(first.id, later).await.unwrap();
    store.mark_notice_sent(second.id, later).await.unwrap();
    assert!(store.due_notices(later, 10).await.unwrap().is_empty());
    let all = store.notices().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|n| n.sent_at == Some(later)));
}
on_both_backends!(
    the_outbox_keeps_every_notice_until_sent_on_sqlite,
    the_outbox_keeps_every_notice_until_sent_on_postgres,
    the_outbox_keeps_every_notice_until_sent
);

/// The status generation moves, in the same commit, with every change to what
/// OCSP says of a certificate, and with nothing else; a revocation returns only
/// after the status lease.
async fn the_status_generation_moves_with_every_status_change(db: TestDb) {
    use sceau::store::certificates::CertificateReservation;
    use sceau::store::ra::{Effect, RaChange, Revocation};
    use sceau::store::status::SerialStatus;

    let store = db.store().await;
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let entity = store.insert_entity(&acme(), now).await.unwrap();
    let start = store.status_generation().await.unwrap();

    let serial = "7a3f0c11".to_owned();
    let reservation = CertificateReservation {
        serial: serial.clone(),
        policy_id: "seal-ca-managed".to_owned(),
        request_id: uuid::Uuid::new_v4(),
        entity_id: entity.id,
        credential_id: None,
        subject: "CN=ACME".to_owned(),
        spki_sha256: "00".repeat(32),
        not_before: now,
        not_after: now + time::Duration::days(365),
    };
    store.reserve_certificate(&reservation, now).await.unwrap();
    assert_eq!(
        store.status_generation().await.unwrap(),
        start,
        "a reserved serial is still unknown: nothing changed"
    );

    store
        .complete_certificate(&serial, b"\x30\x00", &"11".repeat(32), 1, None, now)
        .await
        .unwrap();
    let issued = store.status_generation().await.unwrap();
    assert!(issued > start, "issuance makes a serial good");
    let read = store
        .certificate_statuses(std::slice::from_ref(&serial))
        .await
        .unwrap();
    assert_eq!(read.generation, issued);
    assert_eq!(read.statuses[0].status, SerialStatus::Good);

    let unrelated = RaChange::new().with(Effect::CertificateAccepted(serial.clone()));
    store
        .apply_ra_change(&unrelated, "sceau.invalid", now)
        .await
        .unwrap()
        .settled()
        .await;
    assert_eq!(
        store.status_generation().await.unwrap(),
        issued,
        "an acceptance does not change a status"
    );

    let revocation = RaChange::new().with(Effect::Revoke(Revocation {
        serial: serial.clone(),
        reason: "keyCompromise".to_owned(),
        reason_code: Some(Reason::KeyCompromise),
        revoked_at: now,
        requested_by: "test".to_owned(),
        requester_role: "ca_admin".to_owned(),
        comment: None,
        journal_index: 2,
        invalidity_date: None,
    }));
    let asked = std::time::Instant::now();
    store
        .apply_ra_change(&revocation, "sceau.invalid", now)
        .await
        .unwrap()
        .settled()
        .await;
    assert!(
        asked.elapsed() >= store.status_lease(),
        "a revocation returned before the status lease ran out"
    );
    let read = store
        .certificate_statuses(&[serial.clone(), "00ff".to_owned()])
        .await
        .unwrap();
    assert!(
        read.generation > issued,
        "a revocation moves the generation"
    );
    assert!(matches!(
        read.statuses[0].status,
        SerialStatus::Revoked {
            reason_code: Some(Reason::KeyCompromise),
            ..
        }
    ));
    assert_eq!(read.statuses[1].status, SerialStatus::Unknown);
    // With no serial known, the generation still comes back.
    let none = store
        .certificate_statuses(&["00ff".to_owned()])
        .await
        .unwrap();
    assert_eq!(none.generation, read.generation);
}
on_both_backends!(
    the_status_generation_moves_with_every_status_change_on_sqlite,
    the_status_generation_moves_with_every_status_change_on_postgres,
    the_status_generation_moves_with_every_status_change
);

/// A client certificate belongs to one organisation, by constraint: two
/// organisations registering the same certificate at once, many times over,
/// never both succeed; the same organisation may register it for several of
/// its credentials.
async fn a_client_certificate_belongs_to_one_organisation(db: TestDb) {
    let store = db.store().await;
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let mut credentials = Vec::new();
    for (i, (name, identifier)) in [
        ("Alpha SA", "NTRFR-123456782"),
        ("Beta SAS", "NTRFR-732829320"),
    ]
    .into_iter()
    .enumerate()
    {
        let entity = store
            .insert_entity(
                &NewEntity {
                    legal_name: name.to_owned(),
                    organization_identifier: identifier.to_owned(),
                    country: "FR".to_owned(),
                },
                now,
            )
            .await
            .unwrap();
        let key = |n: u8| KeyReference {
            token_role: TokenRole::Seal,
            key_id: vec![u8::try_from(i).unwrap(), n],
            key_label: format!("seal-{i}-{n}"),
        };
        let first = store
            .insert_seal_credential(entity.id, &key(1), now)
            .await
            .unwrap();
        let second = store
            .insert_seal_credential(entity.id, &key(2), now)
            .await
            .unwrap();
        credentials.push((entity.id, first.id, second.id));
    }
    let [(alpha, alpha_1, alpha_2), (beta, beta_1, _)] = credentials[..] else {
        unreachable!()
    };
    for round in 0..20 {
        let binding = ActivationBinding::ClientCertificate {
            sha256: format!("{round:064x}"),
        };
        let (a, b) = tokio::join!(
            store.insert_activation_credential(alpha_1, alpha, &binding, "test", now),
            store.insert_activation_credential(beta_1, beta, &binding, "test", now),
        );
        let won = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: {a:?} / {b:?}");
        let lost = if a.is_ok() { b } else { a }.unwrap_err();
        assert_eq!(lost.kind(), ErrorKind::Conflict, "round {round}: {lost}");
        assert_eq!(
            lost.to_string(),
            "already exists: this client certificate is registered for another organisation"
        );
    }
    let binding = ActivationBinding::ClientCertificate {
        sha256: "ab".repeat(32),
    };
    store
        .insert_activation_credential(alpha_1, alpha, &binding, "test", now)
        .await
        .unwrap();
    store
        .insert_activation_credential(alpha_2, alpha, &binding, "test", now)
        .await
        .unwrap();
    assert_eq!(
        store
            .activation_credentials_for_certificate(&"ab".repeat(32))
            .await
            .unwrap()
            .len(),
        2
    );
}
on_both_backends!(
    a_client_certificate_belongs_to_one_organisation_on_sqlite,
    a_client_certificate_belongs_to_one_organisation_on_postgres,
    a_client_certificate_belongs_to_one_organisation
);
