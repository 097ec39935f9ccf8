//! The instant a payload records: RFC 3339 in UTC, to the second.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// A time in a journal payload, written as `clock::format::rfc3339` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub OffsetDateTime);

impl From<OffsetDateTime> for Time {
    fn from(at: OffsetDateTime) -> Self {
        Self(at)
    }
}

impl From<std::time::SystemTime> for Time {
    fn from(at: std::time::SystemTime) -> Self {
        Self(at.into())
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::clock::format::rfc3339(self.0))
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}
