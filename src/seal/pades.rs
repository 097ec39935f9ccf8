//! PAdES baseline seals (EN 319 142-1) as an incremental update that keeps the
//! original bytes: a signature dictionary (SubFilter ETSI.CAdES.detached, /M,
//! no signing-time in the CMS) in a new revision with its field and widget,
//! the ByteRange patched in place, and the CMS over everything outside
//! /Contents. Refused with 422, naming why: not a PDF, a file that cannot be
//! read (broken xref, truncated), an encrypted file, a certified file that
//! forbids changes (DocMDP P=1).

use std::time::SystemTime;

use bytes::Bytes;
use lopdf::{Dictionary, Object, ObjectId, StringFormat};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::pdf_file::{PdfFile, ReadError, Revision};
use super::{Level, SealError, SealKeys, Sealer, TimeStamper};
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
fn rectangle(file: &PdfFile, object: &Object) -> Option<[f64; 4]> {
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

fn refused(reason: impl Into<String>) -> SealError {
    SealError::Invalid {
        field: "document",
        reason: reason.into(),
    }
}

/// The document, read strictly: a seal is appended only to a file every
/// reader reads the same way. Its cross-reference sections and every object
/// they place must follow the syntax exactly (`PdfFile::check`); a seal
/// chained to a file that lenient readers rebuild by guessing would fail in
/// the stricter ones. An encrypted file is refused even when it opens
/// without a password: its readers would decrypt the appended revision,
/// written in clear.
fn read_strictly(pdf: &[u8]) -> Result<PdfFile<'_>, SealError> {
    if !pdf
        .get(..1024)
        .unwrap_or(pdf)
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        return Err(refused("this is not a PDF (no %PDF- header)"));
    }
    let damaged = |reason: String| {
        refused(format!(
            "the PDF cannot be read as written ({reason}): the file was damaged, \
             truncated or edited by hand; repair it and send it again"
        ))
    };
    let unread = |error: ReadError| match error {
        ReadError::Damaged(reason) => damaged(reason),
        ReadError::Excessive(reason) => refused(format!(
            "the PDF asks more than a file of its size may ({reason}): it is refused before \
             that cost is spent"
        )),
    };
    let file = PdfFile::read(pdf).map_err(unread)?;
    if file.trailer().has(b"Encrypt") {
        return Err(refused("the PDF is encrypted: it cannot be sealed"));
    }
    file.check().map_err(unread)?;
    Ok(file)
}

/// No object number is left under the PDF's limit for the seal.
fn no_object_number() -> SealError {
    refused("the PDF's object numbers reach the limit: no number is left for the seal")
}

/// `annots` with every annotation dictionary written in place moved to an
/// object of its own in `revision` (references kept as they are).
fn indirect_annotations(
    annots: Vec<Object>,
    revision: &mut Revision<'_, '_>,
) -> Result<Vec<Object>, SealError> {
    annots
        .into_iter()
        .map(|annot| match annot {
            Object::Dictionary(dictionary) => revision
                .add(Object::Dictionary(dictionary))
                .map(Object::Reference)
                .map_err(|_| no_object_number()),
            other => Ok(other),
        })
        .collect()
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

/// The DocMDP permissions of a certified document (1, 2 or 3), `None` when
/// it is not certified; refuses one that forbids any change.
fn check_doc_mdp(file: &PdfFile, catalog: &Dictionary) -> Result<Option<i64>, SealError> {
    let Some(perms) = catalog.get(b"Perms").ok().and_then(|p| file.dictionary(p)) else {
        return Ok(None);
    };
    let Some(signature) = perms.get(b"DocMDP").ok().and_then(|s| file.dictionary(s)) else {
        return Ok(None);
    };
    let references = signature
        .get(b"Reference")
        .ok()
        .and_then(|r| file.resolve(r).ok())
        .and_then(|r| r.as_array().ok().cloned())
        .unwrap_or_default();
    for reference in &references {
        let Some(reference) = file.dictionary(reference) else {
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
            .and_then(|p| file.dictionary(p))
            .and_then(|p| p.get(b"P").and_then(Object::as_i64).ok())
            .unwrap_or(2);
        if is_doc_mdp && permission == 1 {
            return Err(refused(
                "the document is certified with no changes permitted (DocMDP P=1): it cannot be sealed",
            ));
        }
        if is_doc_mdp {
            return Ok(Some(permission));
        }
    }
    Ok(None)
}

/// A page-tree node's /Count.
fn page_count(node: &Dictionary) -> Option<u32> {
    node.get(b"Count")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|c| u32::try_from(c).ok())
}

/// Page `wanted` (1-based) of the document: its id and dictionary. The tree
/// is descended by each node's /Count, so only the nodes on the way are read;
/// a tree whose counts lie or whose kids loop is refused.
fn page(
    file: &PdfFile,
    catalog: &Dictionary,
    wanted: u32,
) -> Result<(ObjectId, Dictionary), SealError> {
    let no_page = || refused("the PDF has no page");
    let unreadable = || refused("the PDF's page tree cannot be read (a loop or a wrong /Count)");
    let root_id = catalog
        .get(b"Pages")
        .and_then(Object::as_reference)
        .map_err(|_| no_page())?;
    let root = file.dictionary_at(root_id).ok_or_else(no_page)?;
    let total = page_count(&root).ok_or_else(unreadable)?;
    if total == 0 {
        return Err(no_page());
    }
    if wanted > total {
        return Err(SealError::Invalid {
            field: "page",
            reason: format!("the document has {total} page(s); page {wanted} does not exist"),
        });
    }
    let mut visited = std::collections::HashSet::from([root_id]);
    let mut node = root;
    // The page's place among the pages under `node`.
    let mut remaining = wanted;
    loop {
        let kids = node
            .get(b"Kids")
            .ok()
            .and_then(|k| file.resolve(k).ok())
            .and_then(|k| k.as_array().ok().cloned())
            .ok_or_else(unreadable)?;
        let mut next = None;
        for kid in &kids {
            let id = kid.as_reference().map_err(|_| unreadable())?;
            let dictionary = file
                .dictionary_at(id)
                .ok_or_else(|| refused(format!("page {wanted} of the PDF cannot be read")))?;
            if dictionary.has(b"Kids") {
                let count = page_count(&dictionary).ok_or_else(unreadable)?;
                if remaining <= count {
                    if !visited.insert(id) {
                        return Err(unreadable());
                    }
                    next = Some(dictionary);
                    break;
                }
                remaining -= count;
            } else if remaining == 1 {
                if !visited.insert(id) {
                    return Err(unreadable());
                }
                return Ok((id, dictionary));
            } else {
                remaining -= 1;
            }
        }
        node = next.ok_or_else(unreadable)?;
    }
}

/// A sealed PDF: `head`, then `tail`. Up to B-T the head is the document as
/// it came (shared, never copied) and the tail the seal's revision; B-LT and
/// B-LTA, whose later revisions read the whole file again, hold it all in
/// the tail.
#[derive(Debug)]
pub struct SealedPdf {
    pub head: Bytes,
    pub tail: Vec<u8>,
    pub journal_index: u64,
}

impl SealedPdf {
    /// The whole file in one buffer (a copy, for callers that need one).
    pub fn into_vec(self) -> Vec<u8> {
        let mut whole = Vec::with_capacity(self.head.len() + self.tail.len());
        whole.extend_from_slice(&self.head);
        whole.extend_from_slice(&self.tail);
        whole
    }
}

/// An incremental update, ready to sign: its bytes with a zero-filled
/// /Contents, written after `base` bytes of file, where that /Contents lies
/// in them, and the SHA-256 state after the file's bytes (every digest of
/// the seal starts with them).
struct Prepared {
    update: Vec<u8>,
    /// The length of the file the update follows.
    base: usize,
    /// The offset of `<` and the offset just past `>` of /Contents, in `update`.
    contents: (usize, usize),
    /// SHA-256 over the `base` bytes before the update.
    input_digest: Sha256,
}

impl Prepared {
    /// The two ranges outside /Contents, in the whole file, as /ByteRange
    /// lists them.
    fn byte_range(&self) -> [usize; 4] {
        let (start, end) = self.contents;
        [
            0,
            self.base + start,
            self.base + end,
            self.update.len() - end,
        ]
    }
}

/// Where `needle` first is in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Room kept after the first revision for the ones a level adds (the DSS,
/// a document time-stamp), so they append without moving the file.
const LATER_REVISIONS_BYTES: usize = 4 * CONTENTS_BYTES + 64 * 1024;

/// Builds the new revision: the signature dictionary, the field and widget,
/// the page's annotations and the catalog's AcroForm.
fn prepare(
    pdf: &[u8],
    options: &PadesOptions,
    at: SystemTime,
    sealed_by: String,
) -> Result<Prepared, SealError> {
    let text = AppearanceText { sealed_by, at };
    // The input's SHA-256 is the longest single step on a large file, and
    // one stream cannot be split: it runs on the other core while the file
    // is read and checked.
    std::thread::scope(|scope| {
        let hashing = scope.spawn(|| Sha256::new().chain_update(pdf));
        let update = read_strictly(pdf)
            .and_then(|file| prepare_revision(&file, options, at, Kind::Seal, Some(&text)));
        let input_digest = hashing
            .join()
            .map_err(|_| SealError::Internal("hashing the document failed".into()))?;
        placed(update?, pdf.len(), input_digest)
    })
}

/// `update`, written after `base` bytes: where its /Contents is.
fn placed(update: Vec<u8>, base: usize, input_digest: Sha256) -> Result<Prepared, SealError> {
    let zeros = format!("<{}>", "0".repeat(2 * CONTENTS_BYTES));
    let start = find(&update, zeros.as_bytes())
        .ok_or_else(|| SealError::Internal("the /Contents placeholder is missing".into()))?;
    let end = start + zeros.len();
    Ok(Prepared {
        update,
        base,
        contents: (start, end),
        input_digest,
    })
}

/// What the new revision's signature dictionary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A seal: /Type /Sig, ETSI.CAdES.detached.
    Seal,
    /// A document time-stamp (B-LTA): /Type /DocTimeStamp, ETSI.RFC3161.
    DocumentTimeStamp,
}

/// The update's bytes, to be written after `pdf`.
fn prepare_revision(
    file: &PdfFile,
    options: &PadesOptions,
    at: SystemTime,
    kind: Kind,
    shown: Option<&AppearanceText>,
) -> Result<Vec<u8>, SealError> {
    let mut revision = Revision::new(file).map_err(|e| {
        refused(format!(
            "the PDF cannot be read as written ({e}): repair it and send it again"
        ))
    })?;
    let (catalog_id, catalog) = file.catalog().map_err(refused)?;
    let doc_mdp = check_doc_mdp(file, &catalog)?;
    // The widget's page: the visible seal's, else the first. Read now, so a
    // page that does not parse is the document's fault (422), found before
    // anything is added.
    let wanted_page = options.visible.map_or(1, |v| v.page);
    let (widget_page, page_dictionary) = page(file, &catalog, wanted_page)?;

    // The existing AcroForm, its fields, and an empty signature field of the
    // requested name, if any.
    let acro_form = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|a| file.dictionary(a));
    let fields: Vec<Object> = acro_form
        .as_ref()
        .and_then(|a| a.get(b"Fields").ok())
        .and_then(|f| file.resolve(f).ok())
        .and_then(|f| f.as_array().ok().cloned())
        .unwrap_or_default();
    let field_name_of = |field: &Dictionary| -> Option<Vec<u8>> {
        field
            .get(b"T")
            .ok()
            .and_then(|t| t.as_str().ok())
            .map(<[u8]>::to_vec)
    };
    let known_fields: Vec<(ObjectId, Dictionary)> = fields
        .iter()
        .filter_map(|f| f.as_reference().ok())
        .filter_map(|id| file.dictionary_at(id).map(|d| (id, d)))
        .collect();
    let existing_names: Vec<Vec<u8>> = known_fields
        .iter()
        .filter_map(|(_, d)| field_name_of(d))
        .collect();
    let wanted = options.field_name.clone();
    let reusable = wanted.as_ref().and_then(|name| {
        known_fields.iter().find(|(_, d)| {
            field_name_of(d).as_deref() == Some(name.as_bytes())
                && d.get(b"FT").and_then(Object::as_name).ok() == Some(b"Sig")
                && !d.has(b"V")
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
    // After a certification, a new visible signature field is a change the
    // validators do not grant (P=2 allows filling fields and signing, not new
    // annotations; pyHanko refuses new visible fields after any certification,
    // P=3 included): a visible seal goes into an existing empty field.
    if let (Some(permission), Some(_), None) = (doc_mdp, options.visible, reusable) {
        let empty: Vec<String> = known_fields
            .iter()
            .filter(|(_, d)| d.get(b"FT").and_then(Object::as_name).ok() == Some(b"Sig"))
            .filter(|(_, d)| !d.has(b"V"))
            .filter_map(|(_, d)| field_name_of(d))
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect();
        let fields = if empty.is_empty() {
            "it has none".to_owned()
        } else {
            format!("it has {}", empty.join(", "))
        };
        return Err(SealError::Conflict {
            field: "document",
            reason: format!(
                "the document is certified with DocMDP P={permission}: a visible seal in a \
                 new field adds an annotation after the certification, which would break it. \
                 Seal it without a visible box (no page or box), or visibly into one of its \
                 empty signature fields with field=<name> ({fields})"
            ),
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
    let signature_id = revision
        .add(Object::Dictionary(signature))
        .map_err(|_| no_object_number())?;

    let widget_id = match reusable {
        Some((id, field)) => {
            let mut field = field.clone();
            field.set("V", Object::Reference(signature_id));
            // A field the author placed on a page shows the seal in its box.
            let placed = field
                .get(b"Rect")
                .ok()
                .and_then(|r| rectangle(file, r))
                .filter(|[x1, y1, x2, y2]| x2 - x1 >= 1.0 && y2 - y1 >= 1.0);
            if let (Some([x1, y1, x2, y2]), Some(text), true) = (
                placed,
                shown,
                field.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Widget"),
            ) {
                let stream = appearance(x2 - x1, y2 - y1, text);
                let stream_id = revision
                    .add(Object::Stream(stream))
                    .map_err(|_| no_object_number())?;
                let mut ap = Dictionary::new();
                ap.set("N", Object::Reference(stream_id));
                field.set("AP", Object::Dictionary(ap));
            }
            revision.set(*id, Object::Dictionary(field));
            *id
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
                    let stream_id = revision
                        .add(Object::Stream(stream))
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
            let widget_id = revision
                .add(Object::Dictionary(widget))
                .map_err(|_| no_object_number())?;
            // The page lists the widget among its annotations. ISO 32000-1
            // §7.7.3.3 wants indirect references there; an annotation a
            // producer wrote in place (fpdf2 does) is moved to an object of
            // its own, unchanged, so that validators' diff analysis of later
            // revisions can follow every annotation.
            let mut page = page_dictionary;
            match page.get(b"Annots").cloned() {
                Ok(Object::Reference(annots_id)) => {
                    let annots = file
                        .get(annots_id)
                        .ok()
                        .and_then(|o| o.as_array().ok().cloned())
                        .unwrap_or_default();
                    let mut annots = indirect_annotations(annots, &mut revision)?;
                    annots.push(Object::Reference(widget_id));
                    revision.set(annots_id, Object::Array(annots));
                }
                Ok(Object::Array(annots)) => {
                    let mut annots = indirect_annotations(annots, &mut revision)?;
                    annots.push(Object::Reference(widget_id));
                    page.set("Annots", Object::Array(annots));
                }
                _ => page.set("Annots", Object::Array(vec![Object::Reference(widget_id)])),
            }
            revision.set(widget_page, Object::Dictionary(page));
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
        Ok(Object::Reference(form_id)) => revision.set(form_id, Object::Dictionary(form)),
        _ => catalog.set("AcroForm", Object::Dictionary(form)),
    }
    revision.set(catalog_id, Object::Dictionary(catalog));
    revision
        .write()
        .map_err(|e| refused(format!("the PDF cannot be updated: {e}")))
}

/// Writes the real /ByteRange over the placeholder, padded to the same width.
fn patch_byte_range(prepared: &mut Prepared) -> Result<(), SealError> {
    let range = prepared.byte_range();
    let placeholder = BYTE_RANGE_PLACEHOLDER.as_bytes();
    let at = find(&prepared.update, placeholder)
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
    prepared.update[at..at + placeholder.len()].copy_from_slice(value.as_bytes());
    Ok(())
}

/// The revision that gives the catalog a DSS (EN 319 142-1 §5.4.2) with
/// `certificates` and `crls` (DER each, as streams), merged with any DSS the
/// document had; its bytes, to be written after `pdf`.
fn dss_revision(
    pdf: &[u8],
    certificates: &[Vec<u8>],
    crls: &[Vec<u8>],
) -> Result<Vec<u8>, SealError> {
    let internal =
        |e: String| SealError::Internal(format!("adding the DSS to the sealed PDF: {e}"));
    let file = PdfFile::read(pdf).map_err(|e| internal(e.to_string()))?;
    let mut revision = Revision::new(&file).map_err(internal)?;
    let (catalog_id, mut catalog) = file.catalog().map_err(internal)?;
    let mut dss = catalog
        .get(b"DSS")
        .ok()
        .and_then(|d| file.dictionary(d))
        .unwrap_or_default();
    let existing = |dss: &Dictionary, key: &[u8]| -> Vec<Object> {
        dss.get(key)
            .ok()
            .and_then(|items| file.resolve(items).ok())
            .and_then(|items| items.as_array().ok().cloned())
            .unwrap_or_default()
    };
    let mut certs = existing(&dss, b"Certs");
    let mut revocation = existing(&dss, b"CRLs");
    let mut stream = |bytes: &[u8]| -> Result<Object, SealError> {
        revision
            .add(Object::Stream(lopdf::Stream::new(
                Dictionary::new(),
                bytes.to_vec(),
            )))
            .map(Object::Reference)
            .map_err(|_| no_object_number())
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
    revision.set(catalog_id, Object::Dictionary(catalog));
    revision.write().map_err(internal)
}

/// The SHA-256 of the bytes a prepared revision's /ByteRange covers: the
/// file before the update, then the update outside /Contents.
fn covered_digest(prepared: &Prepared) -> Vec<u8> {
    let (start, end) = prepared.contents;
    let mut hasher = prepared.input_digest.clone();
    hasher.update(&prepared.update[..start]);
    hasher.update(&prepared.update[end..]);
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
    prepared.update[start + 1..start + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    Ok(())
}

impl<K: SealKeys> Sealer<K> {
    /// Seals a PDF at `level`: B-B, B-T (a signature time-stamp), B-LT (then a
    /// revision with the DSS), B-LTA (then a document time-stamp). The input
    /// is shared with the blocking task and, up to B-T, with the answer: it
    /// is never copied there.
    pub async fn pades(
        &self,
        principal: &Principal,
        credential_id: Uuid,
        sad: Option<&str>,
        level: Level,
        options: &PadesOptions,
        pdf: Bytes,
    ) -> Result<SealedPdf, SealError> {
        let _slot = self.slot_of(pdf.len(), super::pdf_reservation(pdf.len()))?;
        let now = self.clock().now();
        // The right to the credential is checked before the document is read;
        // the SAD is spent only once the document proved sealable.
        let sealed_by = self.sealed_by(principal, credential_id).await?;
        let mut prepared = {
            let options = options.clone();
            let pdf = pdf.clone();
            tokio::task::spawn_blocking(move || prepare(&pdf, &options, now, sealed_by))
                .await
                .map_err(|e| SealError::Internal(e.to_string()))??
        };
        let document_sha256 = prepared.input_digest.clone().finalize().to_vec();
        patch_byte_range(&mut prepared)?;
        let digest = covered_digest(&prepared);
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
        // Each revision is hashed once, as it is final: the file's digest
        // and the document time-stamp's both extend this state.
        let Prepared {
            update,
            input_digest: mut hashed,
            ..
        } = prepared;
        hashed.update(&update);
        let (head, tail) = if level >= Level::BLt {
            // The later revisions read the whole file: one buffer, with room
            // for them.
            let mut bytes = Vec::with_capacity(pdf.len() + update.len() + LATER_REVISIONS_BYTES);
            bytes.extend_from_slice(&pdf);
            bytes.extend_from_slice(&update);
            drop(update);
            let before = bytes.len();
            bytes = self.with_validation_data(&key, bytes).await?;
            hashed.update(&bytes[before..]);
            if level >= Level::BLta {
                let before = bytes.len();
                bytes = self.with_document_time_stamp(bytes, hashed.clone()).await?;
                hashed.update(&bytes[before..]);
            }
            (Bytes::new(), bytes)
        } else {
            (pdf, update)
        };
        let details = json!({
            "format": "pades",
            "level": level.name(),
            "document_sha256": hex::encode(&document_sha256),
        });
        // The state already covers the whole file: no second pass over it.
        let journal_index = self
            .record(principal, &key, details, hashed.finalize().into())
            .await?;
        Ok(SealedPdf {
            head,
            tail,
            journal_index,
        })
    }

    /// B-LT: a revision with the DSS: the seal's certificate and chain, the
    /// time-stamping unit's certificate, the issuing CA's CRL (seal and TSU
    /// certificates) and the root's ARL (the issuing CA).
    async fn with_validation_data(
        &self,
        key: &super::SealingKey,
        mut bytes: Vec<u8>,
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
        tokio::task::spawn_blocking(move || {
            let update = dss_revision(&bytes, &certificates, &revocation)?;
            bytes.extend_from_slice(&update);
            Ok(bytes)
        })
        .await
        .map_err(|e| SealError::Internal(e.to_string()))?
    }

    /// B-LTA: a revision with a document time-stamp (ETSI.RFC3161) over
    /// everything before it, the DSS included. `hashed` is the SHA-256
    /// state over all of `bytes`.
    async fn with_document_time_stamp(
        &self,
        bytes: Vec<u8>,
        hashed: Sha256,
    ) -> Result<Vec<u8>, SealError> {
        let now = self.clock().now();
        let (mut bytes, mut prepared) = tokio::task::spawn_blocking(move || {
            // Our own output: read, but not checked object by object again.
            let file = PdfFile::read(&bytes)
                .map_err(|e| SealError::Internal(format!("re-reading the sealed PDF: {e}")))?;
            let update = prepare_revision(
                &file,
                &PadesOptions::default(),
                now,
                Kind::DocumentTimeStamp,
                None,
            )?;
            drop(file);
            let prepared = placed(update, bytes.len(), hashed)?;
            Ok::<_, SealError>((bytes, prepared))
        })
        .await
        .map_err(|e| SealError::Internal(e.to_string()))??;
        patch_byte_range(&mut prepared)?;
        let digest = covered_digest(&prepared);
        let stamp = self
            .time_stamper()
            .stamp(crate::crypto::DigestAlgorithm::Sha256, &digest)
            .await
            .map_err(SealError::TimeStamp)?;
        fill_contents(&mut prepared, &stamp.token)?;
        bytes.extend_from_slice(&prepared.update);
        Ok(bytes)
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
