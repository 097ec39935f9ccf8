//! The incremental update that carries the signature: the revision prepared
//! with its placeholder, the byte range patched, the digest it covers and the
//! CMS put in its place.

use super::*;

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
pub(super) struct Prepared {
    pub(super) update: Vec<u8>,
    /// The length of the file the update follows.
    pub(super) base: usize,
    /// The offset of `<` and the offset just past `>` of /Contents, in `update`.
    pub(super) contents: (usize, usize),
    /// SHA-256 over the `base` bytes before the update.
    pub(super) input_digest: Sha256,
}

impl Prepared {
    /// The two ranges outside /Contents, in the whole file, as /ByteRange
    /// lists them.
    pub(super) fn byte_range(&self) -> [usize; 4] {
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
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Room kept after the first revision for the ones a level adds (the DSS,
/// a document time-stamp), so they append without moving the file.
pub(super) const LATER_REVISIONS_BYTES: usize = 4 * CONTENTS_BYTES + 64 * 1024;

/// Builds the new revision: the signature dictionary, the field and widget,
/// the page's annotations and the catalog's AcroForm.
pub(super) fn prepare(
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
pub(super) fn placed(
    update: Vec<u8>,
    base: usize,
    input_digest: Sha256,
) -> Result<Prepared, SealError> {
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
pub(super) enum Kind {
    /// A seal: /Type /Sig, ETSI.CAdES.detached.
    Seal,
    /// A document time-stamp (B-LTA): /Type /DocTimeStamp, ETSI.RFC3161.
    DocumentTimeStamp,
}

/// The update's bytes, to be written after `pdf`.
pub(super) fn prepare_revision(
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
        signature.set(
            "M",
            Object::string_literal(crate::clock::format::pdf_date(at)),
        );
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
                set_appearance(&mut revision, &mut field, (x2 - x1, y2 - y1), text)?;
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
                    set_appearance(&mut revision, &mut widget, (x2 - x1, y2 - y1), text)?;
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
pub(super) fn patch_byte_range(prepared: &mut Prepared) -> Result<(), SealError> {
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

/// The SHA-256 of the bytes a prepared revision's /ByteRange covers: the
/// file before the update, then the update outside /Contents.
pub(super) fn covered_digest(prepared: &Prepared) -> Vec<u8> {
    let (start, end) = prepared.contents;
    let mut hasher = prepared.input_digest.clone();
    hasher.update(&prepared.update[..start]);
    hasher.update(&prepared.update[end..]);
    hasher.finalize().to_vec()
}

/// Writes `der` as hex into a prepared revision's /Contents.
pub(super) fn fill_contents(prepared: &mut Prepared, der: &[u8]) -> Result<(), SealError> {
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

/// Gives `widget` a normal appearance of `size` (width, height) showing
/// `text`, its stream a new object of `revision`.
fn set_appearance(
    revision: &mut Revision<'_, '_>,
    widget: &mut Dictionary,
    (width, height): (f64, f64),
    text: &AppearanceText,
) -> Result<(), SealError> {
    let stream_id = revision
        .add(Object::Stream(appearance(width, height, text)))
        .map_err(|_| no_object_number())?;
    let mut ap = Dictionary::new();
    ap.set("N", Object::Reference(stream_id));
    widget.set("AP", Object::Dictionary(ap));
    Ok(())
}
