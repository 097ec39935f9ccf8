//! The portal's two languages: French and English texts from Fluent files
//! (`src/portal/locales/*.ftl`, compiled in), the language a request is
//! served in (the person's choice, else `Accept-Language`, else French), and
//! dates written the way each language writes them.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use time::OffsetDateTime;
use unic_langid::LanguageIdentifier;

/// A language the portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Self::Fr => "fr",
            Self::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|lang| lang.code() == code)
    }

    /// The first language of an `Accept-Language` header the portal speaks,
    /// by preference weight (RFC 9110 §12.5.4).
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut ranges: Vec<(u16, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(position, item)| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim().to_ascii_lowercase();
                let primary = tag.split('-').next()?;
                let lang = Lang::parse(primary)?;
                let weight =
                    parts
                        .find_map(|p| p.trim().strip_prefix("q="))
                        .map_or(Some(1000), |q| {
                            q.trim()
                                .parse::<f32>()
                                .ok()
                                .filter(|q| (0.0..=1.0).contains(q))
                                // Bounded to 0..=1000 by the filter above.
                                .map(|q| (q * 1000.0).round() as u16)
                        })?;
                (weight > 0).then_some((weight, position, lang))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges.first().map(|(_, _, lang)| *lang)
    }

    fn index(self) -> usize {
        match self {
            Self::Fr => 0,
            Self::En => 1,
        }
    }
}

const SOURCES: [(&str, &str); 2] = [
    ("fr", include_str!("locales/fr.ftl")),
    ("en", include_str!("locales/en.ftl")),
];

struct Bundles([FluentBundle<FluentResource>; 2]);

/// The bundles, built once. The files are part of the binary and a unit test
/// parses them, so an error here is a build that never passed its tests:
/// the message then shows as its id rather than stopping the service.
static BUNDLES: LazyLock<Bundles> = LazyLock::new(|| {
    Bundles(SOURCES.map(|(code, source)| {
        let id: LanguageIdentifier = code.parse().unwrap_or_default();
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // Plain text in HTML: no Unicode isolation marks around arguments.
        bundle.set_use_isolating(false);
        let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(r, _)| r);
        let _ = bundle.add_resource(resource);
        bundle
    }))
});

/// The texts of one language, as templates use them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Texts {
    pub lang: Lang,
}

impl Texts {
    pub(super) fn new(lang: Lang) -> Self {
        Self { lang }
    }

    /// Whether there is a message `id`.
    pub(super) fn has(&self, id: &str) -> bool {
        BUNDLES.0[self.lang.index()].has_message(id)
    }

    /// The message `id`.
    pub(super) fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with one argument.
    pub(super) fn t1(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_string());
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        let bundle = &BUNDLES.0[self.lang.index()];
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::error!(id, lang = self.lang.code(), "portal text missing");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }

    /// A date and time, in UTC, as this language writes it.
    pub(super) fn date_time(&self, at: &OffsetDateTime) -> String {
        let at = at.to_offset(time::UtcOffset::UTC);
        let month = self.t(&format!("month-{}", u8::from(at.month())));
        match self.lang {
            Lang::Fr => format!(
                "{} {month} {} à {:02}:{:02} UTC",
                at.day(),
                at.year(),
                at.hour(),
                at.minute()
            ),
            Lang::En => format!(
                "{} {month} {}, {:02}:{:02} UTC",
                at.day(),
                at.year(),
                at.hour(),
                at.minute()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(source: &str) -> std::collections::BTreeSet<String> {
        let resource = FluentResource::try_new(source.to_owned())
            .unwrap_or_else(|(_, errors)| panic!("{errors:?}"));
        resource
            .entries()
            .filter_map(|entry| match entry {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn both_languages_parse_and_hold_the_same_messages() {
        assert_eq!(ids(SOURCES[0].1), ids(SOURCES[1].1));
    }

    #[test]
    fn every_message_a_template_names_exists() {
        let fr = ids(SOURCES[0].1);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/portal");
        let mut named = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for part in text
                .split("t(\"")
                .skip(1)
                .chain(text.split("t1(\"").skip(1))
            {
                let id = part.split('"').next().unwrap();
                assert!(fr.contains(id), "{id} is not in the Fluent files");
                named += 1;
            }
        }
        assert!(named > 20, "{named}");
    }

    #[test]
    fn accept_language_is_read_by_weight() {
        assert_eq!(
            Lang::from_accept_language("en-GB,en;q=0.9,fr;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("de, fr;q=0.5, en;q=0.7"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("fr-CA, en"), Some(Lang::Fr));
        assert_eq!(Lang::from_accept_language("en;q=0, de"), None);
        assert_eq!(Lang::from_accept_language("en;q=2"), None);
    }

    #[test]
    fn dates_follow_the_language() {
        let at = time::macros::datetime!(2026-12-08 14:05 UTC);
        assert_eq!(
            Texts::new(Lang::Fr).date_time(&at),
            "8 décembre 2026 à 14:05 UTC"
        );
        assert_eq!(
            Texts::new(Lang::En).date_time(&at),
            "8 December 2026, 14:05 UTC"
        );
    }
}
