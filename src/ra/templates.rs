//! The texts of the notices the RA sends, in French and English: subjects and
//! plain-text bodies, with dates both as RFC 3339 (UTC) and in words. Pure: the
//! caller picks the language and hands the result to the outbox. Texts carry
//! only what the caller passes in: never a key, a PIN or a password.

use std::fmt;

use time::{Month, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::clock::format::rfc3339;

/// The languages notices are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Fr,
    En,
}

impl Language {
    pub const ALL: [Language; 2] = [Self::Fr, Self::En];

    /// The ISO 639-1 code: "fr" or "en".
    pub fn code(self) -> &'static str {
        match self {
            Self::Fr => "fr",
            Self::En => "en",
        }
    }

    /// "fr" or "en", in any case; a regional tag ("fr-FR", "en-GB") counts as
    /// its language.
    pub fn parse(text: &str) -> Option<Self> {
        let primary = text.trim().split(['-', '_']).next()?;
        Self::ALL
            .into_iter()
            .find(|language| primary.eq_ignore_ascii_case(language.code()))
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A notice ready to send: a one-line subject and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// Every notice the RA sends, with what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeText {
    /// The request was received.
    Acknowledgement {
        request_id: Uuid,
        entity_name: String,
        policy_title: String,
    },
    /// The officer needs more information or documents.
    InformationNeeded {
        request_id: Uuid,
        entity_name: String,
        message: String,
    },
    /// The request passed the checks; issuance follows.
    Validated {
        request_id: Uuid,
        entity_name: String,
    },
    /// The certificate exists and waits for the subscriber's acceptance.
    Issued {
        request_id: Uuid,
        entity_name: String,
        serial: String,
        not_after: OffsetDateTime,
        accept_url: String,
    },
    /// The request was turned down (final).
    Rejected {
        request_id: Uuid,
        entity_name: String,
        message: String,
    },
    /// The certificate expires soon.
    Reminder {
        entity_name: String,
        serial: String,
        not_after: OffsetDateTime,
        days_left: u32,
        renew_url: String,
    },
    /// A renewal request was opened for a certificate.
    RenewalStarted {
        request_id: Uuid,
        entity_name: String,
        serial: String,
    },
    /// The certificate was revoked.
    Revoked {
        entity_name: String,
        serial: String,
        reason: String,
        effective: OffsetDateTime,
    },
    /// Someone is invited to enrol in a role for an organisation.
    Enrolment {
        entity_name: String,
        role: String,
        enrolment_url: String,
        expires: OffsetDateTime,
    },
}

impl NoticeText {
    /// A stable name for the notice, for the outbox and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Acknowledgement { .. } => "acknowledgement",
            Self::InformationNeeded { .. } => "information_needed",
            Self::Validated { .. } => "validated",
            Self::Issued { .. } => "issued",
            Self::Rejected { .. } => "rejected",
            Self::Reminder { .. } => "reminder",
            Self::RenewalStarted { .. } => "renewal_started",
            Self::Revoked { .. } => "revoked",
            Self::Enrolment { .. } => "enrolment",
        }
    }

    pub fn render(&self, language: Language) -> Rendered {
        let (subject, paragraphs) = match language {
            Language::Fr => self.french(),
            Language::En => self.english(),
        };
        let (greeting, signature) = match language {
            Language::Fr => (
                "Bonjour,",
                "--\nsceau, autorité d'enregistrement\nMessage envoyé automatiquement : merci de ne pas y répondre.",
            ),
            Language::En => (
                "Hello,",
                "--\nsceau registration authority\nThis message was sent automatically: please do not reply to it.",
            ),
        };
        let mut body = String::from(greeting);
        for paragraph in paragraphs {
            body.push_str("\n\n");
            body.push_str(&paragraph);
        }
        body.push_str("\n\n");
        body.push_str(signature);
        body.push('\n');
        Rendered {
            subject: format!("[sceau] {}", one_line(&subject)),
            body,
        }
    }

    fn french(&self) -> (String, Vec<String>) {
        let when = |t: &OffsetDateTime| format!("{} ({})", human_fr(*t), rfc3339(*t));
        match self {
            Self::Acknowledgement {
                request_id,
                entity_name,
                policy_title,
            } => (
                format!("Demande reçue pour {entity_name}"),
                vec![
                    format!(
                        "Nous avons bien reçu la demande de certificat de cachet de {entity_name}, au titre de la politique « {policy_title} »."
                    ),
                    format!("Référence de la demande : {request_id}"),
                    "Un opérateur d'enregistrement va examiner la demande et ses pièces justificatives. Nous vous écrirons s'il manque un élément, puis lorsque la décision sera prise. Vous n'avez rien d'autre à faire pour le moment.".to_owned(),
                ],
            ),
            Self::InformationNeeded {
                request_id,
                entity_name,
                message,
            } => (
                format!("Informations requises pour la demande de {entity_name}"),
                vec![
                    format!(
                        "L'examen de la demande de certificat de {entity_name} (référence {request_id}) est suspendu : il nous manque des informations ou des pièces."
                    ),
                    format!("Message de l'opérateur d'enregistrement :\n\n{}", quote(message)),
                    "Merci de compléter la demande dans sceau. L'examen reprendra dès réception des éléments demandés.".to_owned(),
                ],
            ),
            Self::Validated {
                request_id,
                entity_name,
            } => (
                format!("Demande validée pour {entity_name}"),
                vec![
                    format!(
                        "La demande de certificat de {entity_name} (référence {request_id}) a été validée par l'autorité d'enregistrement."
                    ),
                    "Le certificat va maintenant être émis. Vous recevrez un autre message lorsqu'il sera prêt à être accepté.".to_owned(),
                ],
            ),
            Self::Issued {
                request_id,
                entity_name,
                serial,
                not_after,
                accept_url,
            } => (
                format!("Certificat émis pour {entity_name} : acceptation requise"),
                vec![
                    format!(
                        "Le certificat de cachet de {entity_name} a été émis (demande {request_id})."
                    ),
                    format!("Numéro de série : {serial}\nValable jusqu'au : {}", when(not_after)),
                    format!(
                        "Le certificat ne peut pas être utilisé tant que vous ne l'avez pas accepté. Vérifiez les informations qu'il contient, puis acceptez-le ou refusez-le à cette adresse :\n{accept_url}"
                    ),
                    "Si une information est inexacte, refusez le certificat : il sera alors révoqué.".to_owned(),
                ],
            ),
            Self::Rejected {
                request_id,
                entity_name,
                message,
            } => (
                format!("Demande rejetée pour {entity_name}"),
                vec![
                    format!(
                        "La demande de certificat de {entity_name} (référence {request_id}) a été rejetée par l'autorité d'enregistrement."
                    ),
                    format!("Motif :\n\n{}", quote(message)),
                    "Cette décision est définitive pour cette demande. Vous pouvez déposer une nouvelle demande.".to_owned(),
                ],
            ),
            Self::Reminder {
                entity_name,
                serial,
                not_after,
                days_left,
                renew_url,
            } => (
                format!("Le certificat {serial} expire {}", days_fr(*days_left)),
                vec![
                    format!(
                        "Le certificat de cachet de {entity_name} (numéro de série {serial}) expire {}, le {}.",
                        days_fr(*days_left),
                        when(not_after)
                    ),
                    format!(
                        "Après cette date, il ne permettra plus de créer de cachets. Pour continuer sans interruption, lancez dès maintenant son renouvellement :\n{renew_url}"
                    ),
                ],
            ),
            Self::RenewalStarted {
                request_id,
                entity_name,
                serial,
            } => (
                format!("Renouvellement du certificat {serial} engagé"),
                vec![
                    format!(
                        "Une demande de renouvellement (référence {request_id}) a été ouverte pour {entity_name}, afin de remplacer le certificat de numéro de série {serial}."
                    ),
                    "Cette demande ne modifie pas le certificat actuel. Nous vous écrirons à chaque étape de son traitement.".to_owned(),
                ],
            ),
            Self::Revoked {
                entity_name,
                serial,
                reason,
                effective,
            } => (
                format!("Certificat {serial} révoqué"),
                vec![
                    format!(
                        "Le certificat de cachet de {entity_name} (numéro de série {serial}) a été révoqué."
                    ),
                    format!("Date d'effet : {}\nMotif : {}", when(effective), one_line(reason)),
                    "La révocation est immédiate et irréversible : à partir de cette date et heure, le certificat ne peut plus servir à créer de cachets et il ne sera pas rétabli. Pour apposer de nouveau des cachets, une nouvelle demande de certificat est nécessaire.".to_owned(),
                ],
            ),
            Self::Enrolment {
                entity_name,
                role,
                enrolment_url,
                expires,
            } => (
                format!("Invitation à rejoindre {entity_name} dans sceau"),
                vec![
                    format!(
                        "Vous êtes invité(e) à vous enregistrer dans sceau en tant que {role} pour {entity_name}."
                    ),
                    format!("Pour terminer votre enregistrement, ouvrez ce lien :\n{enrolment_url}"),
                    format!(
                        "Ce lien vous est personnel : ne le transmettez pas. Il expire le {}.",
                        when(expires)
                    ),
                    "Si vous n'attendiez pas cette invitation, ignorez ce message.".to_owned(),
                ],
            ),
        }
    }

    fn english(&self) -> (String, Vec<String>) {
        let when = |t: &OffsetDateTime| format!("{} ({})", human_en(*t), rfc3339(*t));
        match self {
            Self::Acknowledgement {
                request_id,
                entity_name,
                policy_title,
            } => (
                format!("Request received for {entity_name}"),
                vec![
                    format!(
                        "We have received the seal certificate request of {entity_name} under the policy \"{policy_title}\"."
                    ),
                    format!("Request reference: {request_id}"),
                    "A registration officer will review the request and its supporting documents. We will write to you if anything is missing, and again once a decision is made. There is nothing more for you to do for now.".to_owned(),
                ],
            ),
            Self::InformationNeeded {
                request_id,
                entity_name,
                message,
            } => (
                format!("Information needed for the request of {entity_name}"),
                vec![
                    format!(
                        "The review of the certificate request of {entity_name} (reference {request_id}) is on hold: some information or documents are missing."
                    ),
                    format!("Message from the registration officer:\n\n{}", quote(message)),
                    "Please complete the request in sceau. The review resumes as soon as we receive what is asked for.".to_owned(),
                ],
            ),
            Self::Validated {
                request_id,
                entity_name,
            } => (
                format!("Request validated for {entity_name}"),
                vec![
                    format!(
                        "The certificate request of {entity_name} (reference {request_id}) has been validated by the registration authority."
                    ),
                    "The certificate will now be issued. You will receive another message when it is ready for your acceptance.".to_owned(),
                ],
            ),
            Self::Issued {
                request_id,
                entity_name,
                serial,
                not_after,
                accept_url,
            } => (
                format!("Certificate issued for {entity_name}: acceptance required"),
                vec![
                    format!("The seal certificate of {entity_name} has been issued (request {request_id})."),
                    format!("Serial number: {serial}\nValid until: {}", when(not_after)),
                    format!(
                        "The certificate cannot be used until you accept it. Check the details it contains, then accept or refuse it at this address:\n{accept_url}"
                    ),
                    "If any detail is wrong, refuse the certificate: it will then be revoked.".to_owned(),
                ],
            ),
            Self::Rejected {
                request_id,
                entity_name,
                message,
            } => (
                format!("Request rejected for {entity_name}"),
                vec![
                    format!(
                        "The certificate request of {entity_name} (reference {request_id}) has been rejected by the registration authority."
                    ),
                    format!("Reason:\n\n{}", quote(message)),
                    "This decision is final for this request. You may submit a new request.".to_owned(),
                ],
            ),
            Self::Reminder {
                entity_name,
                serial,
                not_after,
                days_left,
                renew_url,
            } => (
                format!("Certificate {serial} expires {}", days_en(*days_left)),
                vec![
                    format!(
                        "The seal certificate of {entity_name} (serial number {serial}) expires {}, on {}.",
                        days_en(*days_left),
                        when(not_after)
                    ),
                    format!(
                        "After that date it can no longer be used to create seals. To carry on without interruption, start its renewal now:\n{renew_url}"
                    ),
                ],
            ),
            Self::RenewalStarted {
                request_id,
                entity_name,
                serial,
            } => (
                format!("Renewal of certificate {serial} started"),
                vec![
                    format!(
                        "A renewal request (reference {request_id}) has been opened for {entity_name} to replace the certificate with serial number {serial}."
                    ),
                    "This request does not change the current certificate. We will write to you at each step of its processing.".to_owned(),
                ],
            ),
            Self::Revoked {
                entity_name,
                serial,
                reason,
                effective,
            } => (
                format!("Certificate {serial} revoked"),
                vec![
                    format!(
                        "The seal certificate of {entity_name} (serial number {serial}) has been revoked."
                    ),
                    format!("Effective: {}\nReason: {}", when(effective), one_line(reason)),
                    "Revocation is immediate and irreversible: from that date and time the certificate can no longer be used to create seals, and it will not be reinstated. To seal again, a new certificate request is needed.".to_owned(),
                ],
            ),
            Self::Enrolment {
                entity_name,
                role,
                enrolment_url,
                expires,
            } => (
                format!("Invitation to join {entity_name} in sceau"),
                vec![
                    format!("You are invited to enrol in sceau as {role} for {entity_name}."),
                    format!("To complete your enrolment, open this link:\n{enrolment_url}"),
                    format!(
                        "This link is personal: do not forward it. It expires on {}.",
                        when(expires)
                    ),
                    "If you were not expecting this invitation, ignore this message.".to_owned(),
                ],
            ),
        }
    }
}

/// "22 novembre 2026 à 14:05 UTC" ("1er" for the first of the month).
fn human_fr(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    let month = match utc.month() {
        Month::January => "janvier",
        Month::February => "février",
        Month::March => "mars",
        Month::April => "avril",
        Month::May => "mai",
        Month::June => "juin",
        Month::July => "juillet",
        Month::August => "août",
        Month::September => "septembre",
        Month::October => "octobre",
        Month::November => "novembre",
        Month::December => "décembre",
    };
    let day = match utc.day() {
        1 => "1er".to_owned(),
        day => day.to_string(),
    };
    format!(
        "{day} {month} {} à {:02}:{:02} UTC",
        utc.year(),
        utc.hour(),
        utc.minute()
    )
}

/// "22 November 2026 at 14:05 UTC".
fn human_en(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    format!(
        "{} {} {} at {:02}:{:02} UTC",
        utc.day(),
        utc.month(),
        utc.year(),
        utc.hour(),
        utc.minute()
    )
}

fn days_fr(days: u32) -> String {
    match days {
        0 => "aujourd'hui".to_owned(),
        1 => "demain".to_owned(),
        n => format!("dans {n} jours"),
    }
}

fn days_en(days: u32) -> String {
    match days {
        0 => "today".to_owned(),
        1 => "tomorrow".to_owned(),
        n => format!("in {n} days"),
    }
}

/// Subjects and one-line fields: no line breaks or other control characters
/// (a name with a newline must not start a new mail header).
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An officer's free text, set apart with "> " on each line.
fn quote(text: &str) -> String {
    let lines: Vec<String> = text
        .trim()
        .lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_owned()
            } else {
                format!("> {line}")
            }
        })
        .collect();
    if lines.is_empty() {
        ">".to_owned()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests;
