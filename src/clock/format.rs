//! Every way the service writes a time, each in UTC to the second: RFC 3339
//! (journal payloads, notices, transcripts), the RFC 9110 IMF-fixdate (HTTP
//! headers), CSC's certificate dates, PDF dates and the visible seal's line.

use time::{OffsetDateTime, UtcOffset};

/// RFC 3339 in UTC, to the second: `2026-11-22T14:05:00Z`.
pub fn rfc3339(at: impl Into<OffsetDateTime>) -> String {
    let utc = at.into().to_offset(UtcOffset::UTC);
    let utc = utc.replace_nanosecond(0).unwrap_or(utc);
    // Only years outside 0..=9999 fail to format; say the date another way then.
    utc.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| utc.to_string())
}

/// An IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(at: impl Into<OffsetDateTime>) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let utc = at.into().to_offset(UtcOffset::UTC);
    utc.format(&format).unwrap_or_else(|_| utc.to_string())
}

/// `YYYYMMDDHHMMSSZ`, as CSC's `credentials/info` writes certificate dates.
pub fn generalized_time(at: impl Into<OffsetDateTime>) -> String {
    utc_with(
        at,
        time::macros::format_description!("[year][month][day][hour][minute][second]Z"),
    )
}

/// `D:YYYYMMDDHHmmSS+00'00'`, a PDF date (ISO 32000-1 §7.9.4).
pub fn pdf_date(at: impl Into<OffsetDateTime>) -> String {
    utc_with(
        at,
        time::macros::format_description!("D:[year][month][day][hour][minute][second]+00'00'"),
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for people (a visible seal's text).
pub fn human_utc(at: impl Into<OffsetDateTime>) -> String {
    utc_with(
        at,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"),
    )
}

fn utc_with(
    at: impl Into<OffsetDateTime>,
    format: &[time::format_description::BorrowedFormatItem<'_>],
) -> String {
    let utc = at.into().to_offset(UtcOffset::UTC);
    utc.format(format).unwrap_or_else(|_| utc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn both_formats_are_utc_to_the_second() {
        let at = datetime!(1994-11-06 09:49:37.123456789 +01:00);
        assert_eq!(rfc3339(at), "1994-11-06T08:49:37Z");
        assert_eq!(http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
        let system: std::time::SystemTime = at.into();
        assert_eq!(rfc3339(system), "1994-11-06T08:49:37Z");
    }

    #[test]
    fn the_compact_forms_are_utc_to_the_second() {
        let at = datetime!(1994-11-06 09:49:37.5 +01:00);
        assert_eq!(generalized_time(at), "19941106084937Z");
        assert_eq!(pdf_date(at), "D:19941106084937+00'00'");
        assert_eq!(human_utc(at), "1994-11-06 08:49:37 UTC");
    }
}
