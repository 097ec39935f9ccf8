//! The incremental update: objects added or replaced after a file's bytes,
//! with a cross-reference section of the file's own kind.

use super::*;

/// No object number is left under `MAX_OBJECT_NUMBER` for the update.
#[derive(Debug)]
pub struct NoObjectNumber;

/// An incremental update: objects added or replaced, written after the
/// file's bytes with a cross-reference section of the file's own kind.
pub struct Revision<'f, 'a> {
    file: &'f PdfFile<'a>,
    objects: BTreeMap<u32, (u16, Object)>,
    /// The numbers of the file's own objects that `set` replaces: written
    /// over their bytes as read (`crate::patch`).
    replaced: HashSet<u32>,
    next: u32,
}

impl<'f, 'a> Revision<'f, 'a> {
    pub fn new(file: &'f PdfFile<'a>) -> Result<Self, String> {
        Ok(Self {
            file,
            objects: BTreeMap::new(),
            replaced: HashSet::new(),
            next: file.next_number()?,
        })
    }

    /// A new object; its id.
    pub fn add(&mut self, object: Object) -> Result<ObjectId, NoObjectNumber> {
        // One number stays free for a cross-reference stream.
        if self.next >= MAX_OBJECT_NUMBER {
            return Err(NoObjectNumber);
        }
        let id = (self.next, 0);
        self.next += 1;
        self.objects.insert(id.0, (0, object));
        Ok(id)
    }

    /// A new version of the file's object `id`.
    pub fn set(&mut self, id: ObjectId, object: Object) {
        if self.file.entries.contains_key(&id.0) {
            self.replaced.insert(id.0);
        }
        self.objects.insert(id.0, (id.1, object));
    }

    /// `object`, the new version of the file's object `id`, written over the
    /// file's bytes for it: unchanged values as the producer wrote them.
    /// Written anew when those bytes cannot be had (a stream).
    fn write_replacement(
        &self,
        out: &mut Vec<u8>,
        id: ObjectId,
        object: &Object,
    ) -> Result<(), String> {
        if let (Ok(original), Ok(Some(raw))) = (self.file.get(id), self.file.raw_value(id)) {
            out.extend_from_slice(&patched(&raw, &original, object)?);
            return Ok(());
        }
        lopdf::Writer::write_object(out, object).map_err(|e| format!("writing the update: {e}"))
    }

    /// The update's bytes, to be written right after the file's.
    pub fn write(self) -> Result<Vec<u8>, String> {
        let write_error = |e: std::io::Error| format!("writing the update: {e}");
        let base = self.file.bytes.len();
        let mut out = Vec::new();
        if !self.file.bytes.ends_with(b"\n") && !self.file.bytes.ends_with(b"\r") {
            out.push(b'\n');
        }
        let mut placed: Vec<(u32, u16, usize)> = Vec::with_capacity(self.objects.len() + 1);
        for (number, (generation, object)) in &self.objects {
            placed.push((*number, *generation, base + out.len()));
            out.extend_from_slice(format!("{number} {generation} obj\n").as_bytes());
            if self.replaced.contains(number) {
                self.write_replacement(&mut out, (*number, *generation), object)?;
            } else {
                lopdf::Writer::write_object(&mut out, object).map_err(write_error)?;
            }
            out.extend_from_slice(b"\nendobj\n");
        }
        let mut trailer = self.file.trailer.clone();
        for key in [
            &b"Prev"[..],
            b"XRefStm",
            b"Type",
            b"W",
            b"Index",
            b"Length",
            b"Filter",
            b"DecodeParms",
        ] {
            trailer.remove(key);
        }
        trailer.set("Prev", Object::Integer(self.file.last_section as i64));
        let section_at = base + out.len();
        match self.file.kind {
            XrefKind::Table => {
                trailer.set("Size", Object::Integer(i64::from(self.next)));
                out.extend_from_slice(b"xref\n");
                for run in runs(&placed) {
                    out.extend_from_slice(format!("{} {}\n", run[0].0, run.len()).as_bytes());
                    for (_, generation, offset) in run {
                        out.extend_from_slice(
                            format!("{offset:010} {generation:05} n\r\n").as_bytes(),
                        );
                    }
                }
                out.extend_from_slice(b"trailer\n");
                lopdf::Writer::write_object(&mut out, &Object::Dictionary(trailer))
                    .map_err(write_error)?;
                out.push(b'\n');
            }
            XrefKind::Stream => {
                // The stream lists itself.
                let number = self.next;
                placed.push((number, 0, section_at));
                let offset_width = (usize::BITS - section_at.leading_zeros())
                    .div_ceil(8)
                    .max(1);
                let mut rows = Vec::with_capacity(placed.len() * (offset_width as usize + 3));
                let mut index = Vec::new();
                for run in runs(&placed) {
                    index.push(Object::Integer(i64::from(run[0].0)));
                    index.push(Object::Integer(run.len() as i64));
                    for (_, generation, offset) in run {
                        rows.push(1);
                        rows.extend_from_slice(
                            &offset.to_be_bytes()[(usize::BITS / 8 - offset_width) as usize..],
                        );
                        rows.extend_from_slice(&generation.to_be_bytes());
                    }
                }
                trailer.set("Type", Object::Name(b"XRef".to_vec()));
                trailer.set("Size", Object::Integer(i64::from(number) + 1));
                trailer.set(
                    "W",
                    Object::Array(vec![
                        Object::Integer(1),
                        Object::Integer(i64::from(offset_width)),
                        Object::Integer(2),
                    ]),
                );
                trailer.set("Index", Object::Array(index));
                out.extend_from_slice(format!("{number} 0 obj\n").as_bytes());
                lopdf::Writer::write_object(
                    &mut out,
                    &Object::Stream(lopdf::Stream::new(trailer, rows)),
                )
                .map_err(write_error)?;
                out.extend_from_slice(b"\nendobj\n");
            }
        }
        out.extend_from_slice(format!("startxref\n{section_at}\n%%EOF\n").as_bytes());
        Ok(out)
    }
}

/// `placed` (sorted by number) cut into runs of consecutive numbers: the
/// cross-reference subsections.
fn runs(placed: &[(u32, u16, usize)]) -> Vec<&[(u32, u16, usize)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=placed.len() {
        if i == placed.len() || placed[i].0 != placed[i - 1].0 + 1 {
            if i > start {
                runs.push(&placed[start..i]);
            }
            start = i;
        }
    }
    runs
}
