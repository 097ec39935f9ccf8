//! What the seal reads of the document before writing: the strict read, its
//! certification (DocMDP), its pages, and the PDF text and date values it
//! writes.

use super::*;

/// The document, read strictly: a seal is appended only to a file every
/// reader reads the same way. Its cross-reference sections and every object
/// they place must follow the syntax exactly (`PdfFile::check`); a seal
/// chained to a file that lenient readers rebuild by guessing would fail in
/// the stricter ones. An encrypted file is refused even when it opens
/// without a password: its readers would decrypt the appended revision,
/// written in clear.
pub(super) fn read_strictly(pdf: &[u8]) -> Result<PdfFile<'_>, SealError> {
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
pub(super) fn no_object_number() -> SealError {
    refused("the PDF's object numbers reach the limit: no number is left for the seal")
}

/// `annots` with every annotation dictionary written in place moved to an
/// object of its own in `revision` (references kept as they are).
pub(super) fn indirect_annotations(
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

pub(super) fn text(value: &str) -> Object {
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

/// The DocMDP permissions of a certified document (1, 2 or 3), `None` when
/// it is not certified; refuses one that forbids any change.
pub(super) fn check_doc_mdp(
    file: &PdfFile,
    catalog: &Dictionary,
) -> Result<Option<i64>, SealError> {
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
pub(super) fn page_count(node: &Dictionary) -> Option<u32> {
    node.get(b"Count")
        .and_then(Object::as_i64)
        .ok()
        .and_then(|c| u32::try_from(c).ok())
}

/// Page `wanted` (1-based) of the document: its id and dictionary. The tree
/// is descended by each node's /Count, so only the nodes on the way are read;
/// a tree whose counts lie or whose kids loop is refused.
pub(super) fn page(
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
