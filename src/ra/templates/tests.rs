//! The notice texts rendered in both languages, checked.

use super::*;
use time::macros::datetime;

fn every_notice() -> Vec<NoticeText> {
    let request_id = Uuid::from_u128(0x0199_0000_0000_7000_8000_0000_0000_0001);
    let entity_name = "Société Exemple SAS".to_owned();
    vec![
        NoticeText::Acknowledgement {
            request_id,
            entity_name: entity_name.clone(),
            policy_title: "Cachet qualifié (QSealC)".to_owned(),
        },
        NoticeText::InformationNeeded {
            request_id,
            entity_name: entity_name.clone(),
            message: "L'extrait Kbis a plus de trois mois.\nMerci d'en fournir un récent."
                .to_owned(),
        },
        NoticeText::Validated {
            request_id,
            entity_name: entity_name.clone(),
        },
        NoticeText::Issued {
            request_id,
            entity_name: entity_name.clone(),
            serial: "4F3A9C".to_owned(),
            not_after: datetime!(2028-11-22 14:05:09.5 UTC),
            accept_url: "https://ra.sceau.example.eu/accept/abc".to_owned(),
        },
        NoticeText::Rejected {
            request_id,
            entity_name: entity_name.clone(),
            message: "The mandate is not signed.".to_owned(),
        },
        NoticeText::Reminder {
            entity_name: entity_name.clone(),
            serial: "4F3A9C".to_owned(),
            not_after: datetime!(2026-11-22 14:05 UTC),
            days_left: 30,
            renew_url: "https://ra.sceau.example.eu/renew/4F3A9C".to_owned(),
        },
        NoticeText::RenewalStarted {
            request_id,
            entity_name: entity_name.clone(),
            serial: "4F3A9C".to_owned(),
        },
        NoticeText::Revoked {
            entity_name: entity_name.clone(),
            serial: "4F3A9C".to_owned(),
            reason: "keyCompromise".to_owned(),
            effective: datetime!(2026-11-22 15:05 +01:00),
        },
        NoticeText::Enrolment {
            entity_name,
            role: "RCCS".to_owned(),
            enrolment_url: "https://ra.sceau.example.eu/enrol/xyz".to_owned(),
            expires: datetime!(2026-12-01 09:00 UTC),
        },
    ]
}

#[test]
fn every_notice_renders_in_both_languages() {
    let notices = every_notice();
    let kinds: std::collections::BTreeSet<_> = notices.iter().map(NoticeText::kind).collect();
    assert_eq!(kinds.len(), 9, "one notice of each kind");
    for notice in &notices {
        let fr = notice.render(Language::Fr);
        let en = notice.render(Language::En);
        for rendered in [&fr, &en] {
            assert!(rendered.subject.starts_with("[sceau] "), "{rendered:?}");
            assert!(rendered.subject.len() > "[sceau] ".len());
            assert!(!rendered.subject.contains('\n'));
            assert!(rendered.body.trim().len() > 80, "{rendered:?}");
        }
        assert_ne!(fr.subject, en.subject, "{}", notice.kind());
        assert_ne!(fr.body, en.body, "{}", notice.kind());
        assert!(fr.body.starts_with("Bonjour,"));
        assert!(en.body.starts_with("Hello,"));
    }
}

#[test]
fn the_revocation_states_when_and_that_it_is_final() {
    let notice = &every_notice()[7];
    let fr = notice.render(Language::Fr);
    let en = notice.render(Language::En);
    // 15:05 at +01:00 is 14:05 UTC.
    for body in [&fr.body, &en.body] {
        assert!(body.contains("2026-11-22T14:05:00Z"), "{body}");
        assert!(body.contains("keyCompromise"));
    }
    assert!(
        fr.body.contains("22 novembre 2026 à 14:05 UTC"),
        "{}",
        fr.body
    );
    assert!(fr.body.contains("immédiate et irréversible"));
    assert!(
        en.body.contains("22 November 2026 at 14:05 UTC"),
        "{}",
        en.body
    );
    assert!(en.body.contains("immediate and irreversible"));
}

#[test]
fn the_reminder_states_days_left_and_the_expiry() {
    let notice = &every_notice()[5];
    let fr = notice.render(Language::Fr);
    let en = notice.render(Language::En);
    assert!(fr.subject.contains("dans 30 jours"), "{}", fr.subject);
    assert!(en.subject.contains("in 30 days"), "{}", en.subject);
    for body in [&fr.body, &en.body] {
        assert!(body.contains("2026-11-22T14:05:00Z"), "{body}");
        assert!(body.contains("https://ra.sceau.example.eu/renew/4F3A9C"));
    }
    assert!(fr.body.contains("22 novembre 2026 à 14:05 UTC"));
    assert!(en.body.contains("22 November 2026 at 14:05 UTC"));
}

#[test]
fn dates_are_utc_to_the_second() {
    let t = datetime!(2028-11-22 14:05:09.5 UTC);
    assert_eq!(rfc3339(t), "2028-11-22T14:05:09Z");
    assert_eq!(
        human_fr(datetime!(2026-08-01 00:00 UTC)),
        "1er août 2026 à 00:00 UTC"
    );
    assert_eq!(
        human_en(datetime!(2026-08-01 00:00 UTC)),
        "1 August 2026 at 00:00 UTC"
    );
    assert_eq!(
        human_en(datetime!(2026-12-31 23:30 -02:00)),
        "1 January 2027 at 01:30 UTC"
    );
}

#[test]
fn free_text_is_quoted_and_subjects_stay_on_one_line() {
    let notice = NoticeText::Validated {
        request_id: Uuid::nil(),
        entity_name: "Evil\r\nBcc: someone@example.eu".to_owned(),
    };
    let rendered = notice.render(Language::En);
    assert!(!rendered.subject.contains(['\r', '\n']), "{rendered:?}");
    let rejected = every_notice()[1].render(Language::Fr);
    assert!(rejected.body.contains("> L'extrait Kbis"));
    assert!(rejected.body.contains("> Merci d'en fournir un récent."));
}

#[test]
fn languages_parse_by_code() {
    for language in Language::ALL {
        assert_eq!(Language::parse(language.code()), Some(language));
    }
    assert_eq!(Language::parse("FR"), Some(Language::Fr));
    assert_eq!(Language::parse("en-GB"), Some(Language::En));
    assert_eq!(Language::parse("de"), None);
    assert_eq!(Language::parse(""), None);
}
