//! PAdES baseline seals (EN 319 142-1) as an incremental update that keeps the
//! original bytes: a signature dictionary (SubFilter ETSI.CAdES.detached, /M,
//! no signing-time in the CMS) in a new revision with its field and widget,
//! the ByteRange patched in place, and the CMS over everything outside
//! /Contents. Refused with 422, naming why: not a PDF, a file that cannot be
//! read (broken xref, truncated), an encrypted file, a certified file that
//! forbids changes (DocMDP P=1).

use std::time::SystemTime;

use lopdf::{Dictionary, IncrementalDocument, Object, ObjectId, StringFormat};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Level, SealError, SealKeys, Sealed, Sealer, TimeStamper};
use crate::auth::Principal;

/// `application/pdf`.
pub const MEDIA_TYPE: &str = "application/pdf";
/// Room for the CMS in /Contents, in bytes (hex doubles it in the file): the
/// seal, its chain and a time-stamp token fit with a wide margin.
const CONTENTS_BYTES: usize = 24 * 1024;
/// The ByteRange written first, then overwritten in place with the real one
/// padded to the same width.
const BYTE_RANGE_PLACEHOLDER: &str = "[0 9999999999 9999999999 9999999999]";

/// What the caller may say about the seal.
#[derive(Debug, Clone, Default)]
pub struct PadesOptions {
    pub reason: Option<String>,
    pub location: Option<String>,
    pub contact: Option<String>,
    /// The signature field: an existing empty field of that name is used,
    /// else a new one is made with it.
    pub field_name: Option<String>,
    /// Where the seal shows; `None`: an invisible seal.
    pub visible: Option<VisibleSeal>,
}

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
const MAX_BOX_SIDE: f64 = 14_400.0;
/// The smallest side that still holds a line of text.
const MIN_BOX_SIDE: f64 = 8.0;

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
struct AppearanceText {
    /// The organisation the seal belongs to.
    sealed_by: String,
    at: SystemTime,
}

/// A character in the standard fonts' WinAnsiEncoding, escaped for a PDF
/// string; characters outside it become `?`.
fn win_ansi_string(text: &str) -> Vec<u8> {
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
fn appearance(width: f64, height: f64, text: &AppearanceText) -> lopdf::Stream {
    let at = time::OffsetDateTime::from(text.at);
    let lines = [
        "Electronic seal".to_owned(),
        text.sealed_by.clone(),
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
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
fn rectangle(document: &lopdf::Document, object: &Object) -> Option<[f64; 4]> {
    let array = match object {
        Object::Reference(id) => document.get_object(*id).ok()?.as_array().ok()?,
        other => other.as_array().ok()?,
    };
    let numbers: Vec<f64> = array
        .iter()
        .map(|n| n.as_float().ok().map(f64::from))
        .collect::<Option<_>>()?;
    let [x1, y1, x2, y2] = numbers[..] else {
        return None;
    };
    Some([x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)])
}

fn refused(reason: impl Into<String>) -> SealError {
    SealError::Invalid {
        field: "document",
        reason: reason.into(),
    }
}

/// Refuses an encrypted document. A file lopdf opened with the empty user
/// password was encrypted all the same: its readers would decrypt the
/// appended revision, written in clear.
fn refuse_encrypted(document: &lopdf::Document) -> Result<(), SealError> {
    if document.is_encrypted() || document.was_encrypted() || document.trailer.has(b"Encrypt") {
        return Err(refused("the PDF is encrypted: it cannot be sealed"));
    }
    Ok(())
}

/// The document, read strictly: a seal is appended only to a file every
/// reader reads the same way. lopdf's lenient reading skips objects that do
/// not parse and rebuilds broken cross-reference tables by guessing; a seal
/// over a guess chains to a file other readers see differently (or not at
/// all), so such files are refused, and a lenient second reading only serves
/// to say why.
fn read_strictly(pdf: &[u8]) -> Result<IncrementalDocument, SealError> {
    let strict = lopdf::LoadOptions {
        strict: true,
        ..lopdf::LoadOptions::default()
    };
    let strict_error = match lopdf::Document::load_mem_with_options(pdf, strict) {
        Ok(document) => {
            refuse_encrypted(&document)?;
            super::pdf_syntax::check(pdf, &document).map_err(|reason| {
                refused(format!(
                    "the PDF cannot be read as written ({reason}): the file was damaged; \
                     repair it and send it again"
                ))
            })?;
            return Ok(IncrementalDocument::create_from(pdf.to_vec(), document));
        }
        Err(e) => e,
    };
    let lenient = match lopdf::Document::load_mem(pdf) {
        Ok(document) => document,
        Err(e) => {
            return Err(refused(format!(
                "the PDF cannot be read (broken cross-reference table or truncated file): {e}"
            )));
        }
    };
    refuse_encrypted(&lenient)?;
    Err(refused(match lenient.xref_recovery {
        Some(lopdf::xref::XrefRecovery::OffsetCorrected) => {
            "the PDF cannot be read as written: a cross-reference offset is wrong \
             (the file was damaged or edited); repair it and send it again"
                .to_owned()
        }
        // Reconstructed, and any repair a later lopdf adds.
        Some(_) => "the PDF cannot be read as written: its cross-reference table is broken \
                    or the file is truncated; repair it and send it again"
            .to_owned(),
        None => format!(
            "the PDF cannot be read as written, it does not follow the PDF syntax \
             ({strict_error}); repair it and send it again"
        ),
    }))
}

/// lopdf numbers new objects after the highest in the file; a file that
/// claims the last one leaves none for the seal.
fn no_object_number() -> SealError {
    refused("the PDF's object numbers reach the limit: no number is left for the seal")
}

fn text(value: &str) -> Object {
    // PDF text strings: ASCII as is; anything else as UTF-16BE with a BOM.
    if value.is_ascii() {
        Object::string_literal(value.as_bytes().to_vec())
    } else {
        let mut bytes = vec![0xFE, 0xFF];
        for unit in value.encode_utf16() {
            bytes.extend_from_slice(&unit.to_be_bytes());
        }
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

/// `D:YYYYMMDDHHmmSS+00'00'`.
fn pdf_date(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+00'00'",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The dictionary behind `object`, following one reference.
fn dictionary<'a>(document: &'a lopdf::Document, object: &'a Object) -> Option<&'a Dictionary> {
    match object {
        Object::Dictionary(dictionary) => Some(dictionary),
        Object::Reference(id) => document.get_dictionary(*id).ok(),
        _ => None,
    }
}

/// Refuses a certified document whose DocMDP permissions forbid any change.
fn check_doc_mdp(document: &lopdf::Document, catalog: &Dictionary) -> Result<(), SealError> {
    let Some(perms) = catalog
        .get(b"Perms")
        .ok()
        .and_then(|p| dictionary(document, p))
    else {
        return Ok(());
    };
    let Some(signature) = perms
        .get(b"DocMDP")
        .ok()
        .and_then(|s| dictionary(document, s))
    else {
        return Ok(());
    };
    let references = signature
        .get(b"Reference")
        .and_then(Object::as_array)
        .map(|a| a.as_slice())
        .unwrap_or_default();
    for reference in references {
        let Some(reference) = dictionary(document, reference) else {
            continue;
        };
        let is_doc_mdp = reference
            .get(b"TransformMethod")
            .and_then(Object::as_name)
            .ok()
            == Some(b"DocMDP");
        let permission = reference
            .get(b"TransformParams")
            .ok()
            .and_then(|p| dictionary(document, p))
            .and_then(|p| p.get(b"P").and_then(Object::as_i64).ok())
            .unwrap_or(2);
        if is_doc_mdp && permission == 1 {
            return Err(refused(
                "the document is certified with no changes permitted (DocMDP P=1): it cannot be sealed",
            ));
        }
    }
    Ok(())
}

/// The incremental update, ready to sign: the bytes with a zero-filled
/// /Contents, and where that /Contents lies.
struct Prepared {
    bytes: Vec<u8>,
    /// The offset of `<` and the offset just past `>` of /Contents.
    contents: (usize, usize),
}

impl Prepared {
    /// The two ranges outside /Contents, as /ByteRange lists them.
    fn byte_range(&self) -> [usize; 4] {
        let (start, end) = self.contents;
        [0, start, end, self.bytes.len() - end]
    }
}

/// Finds `needle` in `haystack` from `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Builds the new revision: the signature dictionary, the field and widget,
/// the page's annotations and the catalog's AcroForm.
fn prepare(
    pdf: &[u8],
    options: &PadesOptions,
    at: SystemTime,
    sealed_by: String,
) -> Result<Prepared, SealError> {
    let text = AppearanceText { sealed_by, at };
    prepare_revision(pdf, options, at, Kind::Seal, Some(&text))
}

/// What the new revision's signature dictionary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A seal: /Type /Sig, ETSI.CAdES.detached.
    Seal,
    /// A document time-stamp (B-LTA): /Type /DocTimeStamp, ETSI.RFC3161.
    DocumentTimeStamp,
}

fn prepare_revision(
    pdf: &[u8],
    options: &PadesOptions,
    at: SystemTime,
    kind: Kind,
    shown: Option<&AppearanceText>,
) -> Result<Prepared, SealError> {
    if !pdf
        .get(..1024)
        .unwrap_or(pdf)
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        return Err(refused("this is not a PDF (no %PDF- header)"));
    }
    let mut document = read_strictly(pdf)?;
    let previous = document.get_prev_documents();
    let catalog_id = previous
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| refused("the PDF has no catalog"))?;
    let catalog = previous
        .get_dictionary(catalog_id)
        .map_err(|_| refused("the PDF's catalog cannot be read"))?
        .clone();
    check_doc_mdp(previous, &catalog)?;
    let pages = previous.get_pages();
    if pages.is_empty() {
        return Err(refused("the PDF has no page"));
    }
    // The widget's page: the visible seal's, else the first.
    let wanted_page = options.visible.map_or(1, |v| v.page);
    let widget_page = *pages.get(&wanted_page).ok_or_else(|| SealError::Invalid {
        field: "page",
        reason: format!(
            "the document has {} page(s); page {wanted_page} does not exist",
            pages.len()
        ),
    })?;
    // Read now, so a page that does not parse is the document's fault (422),
    // found before anything is added.
    let page_dictionary = previous
        .get_dictionary(widget_page)
        .map_err(|_| refused(format!("page {wanted_page} of the PDF cannot be read")))?
        .clone();

    // The existing AcroForm, its fields, and an empty signature field of the
    // requested name, if any.
    let acro_form = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|a| dictionary(previous, a))
        .cloned();
    let fields: Vec<Object> = acro_form
        .as_ref()
        .and_then(|a| a.get(b"Fields").ok())
        .and_then(|f| match f {
            Object::Array(items) => Some(items.clone()),
            Object::Reference(id) => previous
                .get_object(*id)
                .ok()
                .and_then(|o| o.as_array().ok().cloned()),
            _ => None,
        })
        .unwrap_or_default();
    let field_name_of = |id: ObjectId| -> Option<Vec<u8>> {
        previous
            .get_dictionary(id)
            .ok()
            .and_then(|d| d.get(b"T").ok())
            .and_then(|t| t.as_str().ok())
            .map(<[u8]>::to_vec)
    };
    let existing_names: Vec<Vec<u8>> = fields
        .iter()
        .filter_map(|f| f.as_reference().ok())
        .filter_map(field_name_of)
        .collect();
    let wanted = options.field_name.clone();
    let reusable = wanted.as_ref().and_then(|name| {
        fields
            .iter()
            .filter_map(|f| f.as_reference().ok())
            .find(|id| {
                field_name_of(*id).as_deref() == Some(name.as_bytes())
                    && previous.get_dictionary(*id).is_ok_and(|d| {
                        d.get(b"FT").and_then(Object::as_name).ok() == Some(b"Sig") && !d.has(b"V")
                    })
            })
    });
    if let (Some(name), None) = (&wanted, reusable)
        && existing_names.iter().any(|n| n == name.as_bytes())
    {
        return Err(SealError::Invalid {
            field: "field",
            reason: format!("a field named {name:?} exists and is not an empty signature field"),
        });
    }
    let prefix = match kind {
        Kind::Seal => "Seal",
        Kind::DocumentTimeStamp => "DocumentTimeStamp",
    };
    let field_name = match wanted {
        Some(name) => name,
        None => (1..)
            .map(|n| format!("{prefix}{n}"))
            .find(|n| !existing_names.iter().any(|e| e == n.as_bytes()))
            .unwrap_or_else(|| "Seal".to_owned()),
    };

    let new = &mut document.new_document;
    let mut signature = Dictionary::new();
    let (type_name, sub_filter): (&[u8], &[u8]) = match kind {
        Kind::Seal => (b"Sig", b"ETSI.CAdES.detached"),
        Kind::DocumentTimeStamp => (b"DocTimeStamp", b"ETSI.RFC3161"),
    };
    signature.set("Type", Object::Name(type_name.to_vec()));
    signature.set("Filter", Object::Name(b"Adobe.PPKLite".to_vec()));
    signature.set("SubFilter", Object::Name(sub_filter.to_vec()));
    // Overwritten in place once the file's layout is known.
    signature.set(
        "ByteRange",
        Object::Array(vec![
            Object::Integer(0),
            Object::Integer(9_999_999_999),
            Object::Integer(9_999_999_999),
            Object::Integer(9_999_999_999),
        ]),
    );
    signature.set(
        "Contents",
        Object::String(vec![0u8; CONTENTS_BYTES], StringFormat::Hexadecimal),
    );
    if kind == Kind::Seal {
        signature.set("M", Object::string_literal(pdf_date(at)));
    }
    if let Some(reason) = &options.reason {
        signature.set("Reason", text(reason));
    }
    if let Some(location) = &options.location {
        signature.set("Location", text(location));
    }
    if let Some(contact) = &options.contact {
        signature.set("ContactInfo", text(contact));
    }
    let signature_id = new
        .try_add_object(Object::Dictionary(signature))
        .map_err(|_| no_object_number())?;

    let widget_id = match reusable {
        Some(id) => {
            let mut field = document
                .get_prev_documents()
                .get_dictionary(id)
                .map_err(|e| SealError::Internal(e.to_string()))?
                .clone();
            field.set("V", Object::Reference(signature_id));
            // A field the author placed on a page shows the seal in its box.
            let placed = field
                .get(b"Rect")
                .ok()
                .and_then(|r| rectangle(document.get_prev_documents(), r))
                .filter(|[x1, y1, x2, y2]| x2 - x1 >= 1.0 && y2 - y1 >= 1.0);
            if let (Some([x1, y1, x2, y2]), Some(text), true) = (
                placed,
                shown,
                field.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Widget"),
            ) {
                let stream = appearance(x2 - x1, y2 - y1, text);
                let stream_id = document
                    .new_document
                    .try_add_object(Object::Stream(stream))
                    .map_err(|_| no_object_number())?;
                let mut ap = Dictionary::new();
                ap.set("N", Object::Reference(stream_id));
                field.set("AP", Object::Dictionary(ap));
            }
            document
                .new_document
                .set_object(id, Object::Dictionary(field));
            id
        }
        None => {
            let mut widget = Dictionary::new();
            widget.set("Type", Object::Name(b"Annot".to_vec()));
            widget.set("Subtype", Object::Name(b"Widget".to_vec()));
            widget.set("FT", Object::Name(b"Sig".to_vec()));
            widget.set("T", text(&field_name));
            widget.set("V", Object::Reference(signature_id));
            // Print + Locked; an invisible seal has an empty rectangle.
            widget.set("F", Object::Integer(132));
            match (options.visible, shown) {
                (Some(VisibleSeal { rect, .. }), Some(text)) => {
                    let [x1, y1, x2, y2] = rect;
                    widget.set(
                        "Rect",
                        Object::Array(rect.iter().map(|n| Object::Real(*n as f32)).collect()),
                    );
                    let stream = appearance(x2 - x1, y2 - y1, text);
                    let stream_id = document
                        .new_document
                        .try_add_object(Object::Stream(stream))
                        .map_err(|_| no_object_number())?;
                    let mut ap = Dictionary::new();
                    ap.set("N", Object::Reference(stream_id));
                    widget.set("AP", Object::Dictionary(ap));
                }
                _ => widget.set(
                    "Rect",
                    Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
                ),
            }
            widget.set("P", Object::Reference(widget_page));
            let widget_id = document
                .new_document
                .try_add_object(Object::Dictionary(widget))
                .map_err(|_| no_object_number())?;
            // The page lists the widget among its annotations.
            let mut page = page_dictionary;
            match page.get(b"Annots").cloned() {
                Ok(Object::Reference(annots_id)) => {
                    let mut annots = document
                        .get_prev_documents()
                        .get_object(annots_id)
                        .ok()
                        .and_then(|o| o.as_array().ok().cloned())
                        .unwrap_or_default();
                    annots.push(Object::Reference(widget_id));
                    document
                        .new_document
                        .set_object(annots_id, Object::Array(annots));
                }
                Ok(Object::Array(mut annots)) => {
                    annots.push(Object::Reference(widget_id));
                    page.set("Annots", Object::Array(annots));
                }
                _ => page.set("Annots", Object::Array(vec![Object::Reference(widget_id)])),
            }
            document
                .new_document
                .set_object(widget_page, Object::Dictionary(page));
            widget_id
        }
    };

    // The catalog's AcroForm lists the field and says the file holds signatures
    // that an append-only save keeps valid (SigFlags 3).
    let mut form = acro_form.unwrap_or_default();
    let mut fields = fields;
    if !fields
        .iter()
        .any(|f| f.as_reference().ok() == Some(widget_id))
    {
        fields.push(Object::Reference(widget_id));
    }
    form.set("Fields", Object::Array(fields));
    form.set("SigFlags", Object::Integer(3));
    let mut catalog = catalog;
    match catalog.get(b"AcroForm").cloned() {
        Ok(Object::Reference(form_id)) => {
            document
                .new_document
                .set_object(form_id, Object::Dictionary(form));
        }
        _ => catalog.set("AcroForm", Object::Dictionary(form)),
    }
    document
        .new_document
        .set_object(catalog_id, Object::Dictionary(catalog));

    let mut bytes = Vec::with_capacity(pdf.len() + 2 * CONTENTS_BYTES + 4096);
    document
        .save_to(&mut bytes)
        .map_err(|e| refused(format!("the PDF cannot be updated: {e}")))?;
    // Find our /Contents and /ByteRange in the appended revision.
    let zeros = format!("<{}>", "0".repeat(2 * CONTENTS_BYTES));
    let start = find(&bytes, zeros.as_bytes(), pdf.len())
        .ok_or_else(|| SealError::Internal("the /Contents placeholder is missing".into()))?;
    let end = start + zeros.len();
    let prepared = Prepared {
        bytes,
        contents: (start, end),
    };
    Ok(prepared)
}

/// Writes the real /ByteRange over the placeholder, padded to the same width.
fn patch_byte_range(
    prepared: &mut Prepared,
    revision_start: usize,
) -> Result<[usize; 4], SealError> {
    let range = prepared.byte_range();
    let placeholder = BYTE_RANGE_PLACEHOLDER.as_bytes();
    let at = find(&prepared.bytes, placeholder, revision_start)
        .ok_or_else(|| SealError::Internal("the /ByteRange placeholder is missing".into()))?;
    let mut value = format!("[{} {} {} {}]", range[0], range[1], range[2], range[3]);
    if value.len() > placeholder.len() {
        return Err(SealError::Internal(
            "the document is too large to seal".into(),
        ));
    }
    while value.len() < placeholder.len() {
        value.insert(value.len() - 1, ' ');
    }
    prepared.bytes[at..at + placeholder.len()].copy_from_slice(value.as_bytes());
    Ok(range)
}

/// Appends a revision whose catalog carries a DSS (EN 319 142-1 §5.4.2) with
/// `certificates` and `crls` (DER each, as streams), merged with any DSS the
/// document had.
fn add_dss(pdf: &[u8], certificates: &[Vec<u8>], crls: &[Vec<u8>]) -> Result<Vec<u8>, SealError> {
    let mut document: IncrementalDocument = pdf.try_into().map_err(|e: lopdf::Error| {
        SealError::Internal(format!("re-reading the sealed PDF: {e}"))
    })?;
    let previous = document.get_prev_documents();
    let catalog_id = previous
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| SealError::Internal("the sealed PDF has no catalog".into()))?;
    let mut catalog = previous
        .get_dictionary(catalog_id)
        .map_err(|e| SealError::Internal(e.to_string()))?
        .clone();
    let mut dss = catalog
        .get(b"DSS")
        .ok()
        .and_then(|d| dictionary(previous, d))
        .cloned()
        .unwrap_or_default();
    let existing = |dss: &Dictionary, key: &[u8]| -> Vec<Object> {
        match dss.get(key) {
            Ok(Object::Array(items)) => items.clone(),
            Ok(Object::Reference(id)) => previous
                .get_object(*id)
                .ok()
                .and_then(|o| o.as_array().ok().cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    let mut certs = existing(&dss, b"Certs");
    let mut revocation = existing(&dss, b"CRLs");
    let new = &mut document.new_document;
    let mut stream = |bytes: &[u8]| -> Result<Object, SealError> {
        let id = new
            .try_add_object(Object::Stream(lopdf::Stream::new(
                Dictionary::new(),
                bytes.to_vec(),
            )))
            .map_err(|e| SealError::Internal(e.to_string()))?;
        Ok(Object::Reference(id))
    };
    for certificate in certificates {
        certs.push(stream(certificate)?);
    }
    for crl in crls {
        revocation.push(stream(crl)?);
    }
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    dss.set("Certs", Object::Array(certs));
    dss.set("CRLs", Object::Array(revocation));
    catalog.set("DSS", Object::Dictionary(dss));
    document
        .new_document
        .set_object(catalog_id, Object::Dictionary(catalog));
    let mut bytes = Vec::with_capacity(pdf.len() + 16 * 1024);
    document
        .save_to(&mut bytes)
        .map_err(|e| SealError::Internal(format!("writing the DSS: {e}")))?;
    Ok(bytes)
}

/// The SHA-256 of the bytes a prepared revision's /ByteRange covers.
fn covered_digest(prepared: &Prepared, range: [usize; 4]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(&prepared.bytes[range[0]..range[0] + range[1]]);
    hasher.update(&prepared.bytes[range[2]..range[2] + range[3]]);
    hasher.finalize().to_vec()
}

/// Writes `der` as hex into a prepared revision's /Contents.
fn fill_contents(prepared: &mut Prepared, der: &[u8]) -> Result<(), SealError> {
    if der.len() > CONTENTS_BYTES {
        return Err(SealError::Internal(format!(
            "the CMS ({} bytes) does not fit in /Contents",
            der.len()
        )));
    }
    let hex = hex::encode_upper(der);
    let (start, _) = prepared.contents;
    prepared.bytes[start + 1..start + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    Ok(())
}

impl<K: SealKeys> Sealer<K> {
    /// Seals a PDF at `level`: B-B, B-T (a signature time-stamp), B-LT (then a
    /// revision with the DSS), B-LTA (then a document time-stamp).
    pub async fn pades(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: Option<&str>,
        level: Level,
        options: &PadesOptions,
        pdf: &[u8],
    ) -> Result<Sealed, SealError> {
        let _slot = self.document_slot(pdf.len(), super::PDF_MEMORY_FACTOR)?;
        let document_sha256 = Sha256::digest(pdf).to_vec();
        let now = self.clock().now();
        // The right to the credential is checked before the document is read;
        // the SAD is spent only once the document proved sealable.
        let sealed_by = self.sealed_by(principal, credential_id).await?;
        let mut prepared = {
            let pdf = pdf.to_vec();
            let options = options.clone();
            tokio::task::spawn_blocking(move || prepare(&pdf, &options, now, sealed_by))
                .await
                .map_err(|e| SealError::Internal(e.to_string()))??
        };
        let range = patch_byte_range(&mut prepared, pdf.len())?;
        let digest = covered_digest(&prepared, range);
        // The SAD binds the document as received: what the caller hashed.
        // The credential is checked again here, not reused from `sealed_by`:
        // reading a large document takes time, and a revocation meanwhile
        // must stop the signature.
        let key = self
            .key_for(
                principal,
                credential_id,
                sad,
                std::slice::from_ref(&document_sha256),
            )
            .await?;
        // The CMS itself stays at B-T at most: PAdES puts the validation data
        // in the DSS (B-LT) and adds a document time-stamp (B-LTA).
        let signed = self
            .signed_data(principal, &key, level.min(Level::BT), &digest, None, false)
            .await?;
        fill_contents(&mut prepared, &signed)?;
        let mut bytes = prepared.bytes;
        if level >= Level::BLt {
            bytes = self.with_validation_data(&key, bytes).await?;
        }
        if level >= Level::BLta {
            bytes = self.with_document_time_stamp(bytes).await?;
        }
        let details = json!({
            "format": "pades",
            "level": level.name(),
            "document_sha256": hex::encode(&document_sha256),
            "sealed_sha256": hex::encode(Sha256::digest(&bytes)),
        });
        let journal_index = self.record(principal, &key, details, &bytes).await?;
        Ok(Sealed {
            der: bytes,
            journal_index,
        })
    }

    /// B-LT: a revision with the DSS: the seal's certificate and chain, the
    /// time-stamping unit's certificate, the issuing CA's CRL (seal and TSU
    /// certificates) and the root's ARL (the issuing CA).
    async fn with_validation_data(
        &self,
        key: &super::SealingKey,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, SealError> {
        let (chain, crls) = self.validation_data().await?;
        let mut certificates = vec![super::encode(&key.certificate)?];
        for certificate in &chain {
            certificates.push(super::encode(certificate)?);
        }
        if let TimeStamper::Local(tsa) = self.time_stamper() {
            certificates.push(super::encode(tsa.unit().certificate())?);
        }
        let mut revocation = Vec::new();
        for crl in &crls {
            revocation.push(super::encode(crl)?);
        }
        if let Some(arl) = self.latest_crl_der(crate::pki::crl::ROOT).await? {
            revocation.push(arl);
        }
        tokio::task::spawn_blocking(move || add_dss(&bytes, &certificates, &revocation))
            .await
            .map_err(|e| SealError::Internal(e.to_string()))?
    }

    /// B-LTA: a revision with a document time-stamp (ETSI.RFC3161) over
    /// everything before it, the DSS included.
    async fn with_document_time_stamp(&self, bytes: Vec<u8>) -> Result<Vec<u8>, SealError> {
        let now = self.clock().now();
        let revision_start = bytes.len();
        let mut prepared = tokio::task::spawn_blocking(move || {
            prepare_revision(
                &bytes,
                &PadesOptions::default(),
                now,
                Kind::DocumentTimeStamp,
                None,
            )
        })
        .await
        .map_err(|e| SealError::Internal(e.to_string()))??;
        let range = patch_byte_range(&mut prepared, revision_start)?;
        let digest = covered_digest(&prepared, range);
        let stamp = self
            .time_stamper()
            .stamp(crate::crypto::DigestAlgorithm::Sha256, &digest)
            .await
            .map_err(SealError::TimeStamp)?;
        fill_contents(&mut prepared, &stamp.token)?;
        Ok(prepared.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_dates_are_utc() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(pdf_date(at), "D:19941106084937+00'00'");
    }

    #[test]
    fn not_a_pdf_and_garbage_are_refused_with_a_reason() {
        let at = SystemTime::UNIX_EPOCH;
        for input in [&b"hello"[..], b"%PDF-1.7\ngarbage", b""] {
            let Err(SealError::Invalid { field, reason }) =
                prepare(input, &PadesOptions::default(), at, "Test".to_owned()).map(|_| ())
            else {
                panic!("accepted {input:?}");
            };
            assert_eq!(field, "document");
            assert!(!reason.is_empty());
        }
    }

    #[test]
    fn a_visible_seal_needs_a_sound_box_and_page() {
        assert_eq!(VisibleSeal::parse(None, None).unwrap(), None);
        assert_eq!(
            VisibleSeal::parse(None, Some("10, 20, 110,70")).unwrap(),
            Some(VisibleSeal {
                page: 1,
                rect: [10.0, 20.0, 110.0, 70.0]
            })
        );
        assert_eq!(
            VisibleSeal::parse(Some("3"), Some("0,0,50.5,40")).unwrap(),
            Some(VisibleSeal {
                page: 3,
                rect: [0.0, 0.0, 50.5, 40.0]
            })
        );
        for (page, area, field) in [
            (Some("2"), None, "box"),
            (Some("0"), Some("0,0,50,50"), "page"),
            (Some("x"), Some("0,0,50,50"), "page"),
            (None, Some("0,0,50"), "box"),
            (None, Some("0,0,50,50,1"), "box"),
            (None, Some("50,0,0,50"), "box"),
            (None, Some("0,0,4,50"), "box"),
            (None, Some("0,0,NaN,50"), "box"),
            (None, Some("0,0,inf,50"), "box"),
            (None, Some("0,0,99999,50"), "box"),
        ] {
            let Err(SealError::Invalid { field: got, .. }) = VisibleSeal::parse(page, area) else {
                panic!("accepted {page:?} {area:?}");
            };
            assert_eq!(got, field, "{page:?} {area:?}");
        }
    }

    #[test]
    fn appearance_text_is_escaped_win_ansi() {
        assert_eq!(win_ansi_string("a(b)c\\"), b"a\\(b\\)c\\\\".to_vec());
        assert_eq!(win_ansi_string("Démo 5 €"), b"D\xe9mo 5 \x80".to_vec());
        assert_eq!(win_ansi_string("漢"), b"?".to_vec());
    }

    #[test]
    fn text_strings_fall_back_to_utf16() {
        assert_eq!(text("Paris"), Object::string_literal(b"Paris".to_vec()));
        let Object::String(bytes, StringFormat::Hexadecimal) = text("Sète") else {
            panic!("not hex");
        };
        assert_eq!(&bytes[..2], &[0xFE, 0xFF]);
    }
}
