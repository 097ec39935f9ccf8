//! The visible seal: its box on a page, checked against the page, and the
//! appearance stream that draws the seal's text in it.

use super::*;

/// A visible seal: a box on a page, in PDF points from the page's lower-left
/// corner. Made once from the caller's `page` and `box`, trusted after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisibleSeal {
    /// 1-based; checked against the document's page count when sealing.
    pub page: u32,
    /// `[x1, y1, x2, y2]` with x1 < x2 and y1 < y2.
    pub rect: [f64; 4],
}

/// The largest side of a seal box: 200 inches, PDF's own page-size limit.
pub(super) const MAX_BOX_SIDE: f64 = 14_400.0;

/// The smallest side that still holds a line of text.
pub(super) const MIN_BOX_SIDE: f64 = 8.0;

impl VisibleSeal {
    /// `page` (1-based, default 1 when a box is given) and `box` as
    /// `x1,y1,x2,y2`. A page without a box is refused: the seal would have
    /// nowhere to show.
    pub fn parse(page: Option<&str>, area: Option<&str>) -> Result<Option<Self>, SealError> {
        let invalid = |field: &'static str, reason: &str| SealError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        let page = match page {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| invalid("page", "a page number from 1"))?,
            ),
        };
        let Some(area) = area else {
            return match page {
                Some(_) => Err(invalid(
                    "box",
                    "a visible seal needs a box: x1,y1,x2,y2 in points",
                )),
                None => Ok(None),
            };
        };
        let numbers: Vec<f64> = area
            .split(',')
            .map(|n| n.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| invalid("box", "four numbers x1,y1,x2,y2 in points"))?;
        let [x1, y1, x2, y2] = numbers[..] else {
            return Err(invalid("box", "four numbers x1,y1,x2,y2 in points"));
        };
        if numbers
            .iter()
            .any(|n| !n.is_finite() || n.abs() > MAX_BOX_SIDE)
        {
            return Err(invalid("box", "coordinates within ±14400 points"));
        }
        if x2 - x1 < MIN_BOX_SIDE || y2 - y1 < MIN_BOX_SIDE {
            return Err(invalid(
                "box",
                "x1 < x2 and y1 < y2, each side at least 8 points",
            ));
        }
        Ok(Some(Self {
            page: page.unwrap_or(1),
            rect: [x1, y1, x2, y2],
        }))
    }
}

/// What the visible seal says.
#[derive(Debug, Clone)]
pub(super) struct AppearanceText {
    /// The organisation the seal belongs to.
    pub(super) sealed_by: String,
    pub(super) at: SystemTime,
}

/// A character in the standard fonts' WinAnsiEncoding, escaped for a PDF
/// string; characters outside it become `?`.
pub(super) fn win_ansi_string(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        let byte = match c {
            '(' | ')' | '\\' => {
                bytes.push(b'\\');
                c as u8
            }
            ' '..='~' => c as u8,
            '\u{20AC}' => 0x80,
            // Latin-1's upper half is WinAnsi's too.
            '\u{A0}'..='\u{FF}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            _ => b'?',
        };
        bytes.push(byte);
    }
    bytes
}

/// The widget's normal appearance: a framed box with the seal's text in
/// Helvetica, sized to fit the box's height, clipped to the box.
pub(super) fn appearance(width: f64, height: f64, text: &AppearanceText) -> lopdf::Stream {
    let lines = [
        "Electronic seal".to_owned(),
        text.sealed_by.clone(),
        crate::clock::format::human_utc(text.at),
    ];
    let longest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
    // Helvetica's average advance is about half the font size.
    let size = (height / (lines.len() as f64 * 1.3 + 0.6))
        .min((width - 6.0) / (longest * 0.5))
        .clamp(2.0, 12.0);
    let leading = size * 1.3;
    let mut content = format!(
        "q 0 0 {width:.2} {height:.2} re W n\n\
         0.94 0.96 1 rg 0 0 {width:.2} {height:.2} re f\n\
         0.1 0.2 0.55 RG 1 w 0.5 0.5 {:.2} {:.2} re S\n\
         BT 0.05 0.1 0.35 rg /Helv {size:.2} Tf {leading:.2} TL 3 {:.2} Td\n",
        width - 1.0,
        height - 1.0,
        height - 3.0 - size,
    )
    .into_bytes();
    for line in &lines {
        content.push(b'(');
        content.extend_from_slice(&win_ansi_string(line));
        content.extend_from_slice(b") Tj T*\n");
    }
    content.extend_from_slice(b"ET Q\n");
    let mut font = Dictionary::new();
    font.set("Type", Object::Name(b"Font".to_vec()));
    font.set("Subtype", Object::Name(b"Type1".to_vec()));
    font.set("BaseFont", Object::Name(b"Helvetica".to_vec()));
    font.set("Encoding", Object::Name(b"WinAnsiEncoding".to_vec()));
    let mut fonts = Dictionary::new();
    fonts.set("Helv", Object::Dictionary(font));
    let mut resources = Dictionary::new();
    resources.set("Font", Object::Dictionary(fonts));
    let mut form = Dictionary::new();
    form.set("Type", Object::Name(b"XObject".to_vec()));
    form.set("Subtype", Object::Name(b"Form".to_vec()));
    form.set(
        "BBox",
        Object::Array(vec![
            0.into(),
            0.into(),
            Object::Real(width as f32),
            Object::Real(height as f32),
        ]),
    );
    form.set("Resources", Object::Dictionary(resources));
    lopdf::Stream::new(form, content)
}

/// A rectangle's four numbers, if `object` is one (following a reference).
pub(super) fn rectangle(file: &PdfFile, object: &Object) -> Option<[f64; 4]> {
    let array = file.resolve(object).ok()?;
    let numbers: Vec<f64> = array
        .as_array()
        .ok()?
        .iter()
        .map(|n| n.as_float().ok().map(f64::from))
        .collect::<Option<_>>()?;
    let [x1, y1, x2, y2] = numbers[..] else {
        return None;
    };
    Some([x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)])
}
