//! A PDF read lazily for sealing, and the incremental update written onto
//! it. Opening reads only the cross-reference sections of every revision
//! (classic tables, cross-reference streams, hybrids) and the newest
//! trailer; an object is parsed, strictly, when the seal first asks for it.
//! A seal touches a handful of objects (catalog, page path, form, DocMDP),
//! so a file of 100,000 objects costs its index, not 100,000 parsed trees.
//! `check` validates every object the tables place without building them,
//! so a damaged file is still refused as a whole.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use lopdf::{Dictionary, Object, ObjectId};

use crate::patch::patched;
use crate::syntax::{Body, Inflate, Reader, inflates, is_flate};

mod revision;
pub use revision::Revision;

/// The highest object number a seal's revision may use: PDF 1.7's documented
/// limit (ISO 32000-1 Annex C). Real files stay far below it.
pub const MAX_OBJECT_NUMBER: u32 = 8_388_607;
/// Sections followed before giving up (a `/Prev` loop is caught before).
const MAX_SECTIONS: usize = 10_000;
/// The least a cross-reference or object stream may always inflate to…
const MIN_DECODED_LIMIT: usize = 4 << 20;
/// …and the most, whatever the file's size.
const MAX_DECODED_LIMIT: usize = lopdf::DEFAULT_MAX_DECOMPRESSED_SIZE;
/// References followed in a row before a chain is called a loop.
const MAX_HOPS: usize = 32;
/// What one cross-reference row may cost the index at most: its map entry
/// and its place in `placed`, with the spare room of their tables.
const ROW_COST_BYTES: usize = 96;
/// The index may always take this much memory, and twice the file's size
/// when that is more: the seal reserves it (`seal::pdf_reservation`).
pub const INDEX_FLOOR_BYTES: usize = 16 << 20;
/// Every stream may inflate to `MIN_DECODED_LIMIT`: reserved with the index.
pub const DECODED_FLOOR_BYTES: usize = MIN_DECODED_LIMIT;

/// The cross-reference rows a file of `len` bytes may list, in all its
/// sections together: what its index may cost, divided by a row's cost.
pub fn row_budget(len: usize) -> usize {
    len.saturating_mul(2).max(INDEX_FLOOR_BYTES) / ROW_COST_BYTES
}

/// Why a file is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// It does not follow the syntax.
    Damaged(String),
    /// It declares more than a file of its size can hold, or than reading it
    /// may cost: refused before the cost is spent.
    Excessive(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Damaged(reason) | Self::Excessive(reason) => f.write_str(reason),
        }
    }
}

impl From<String> for ReadError {
    fn from(reason: String) -> Self {
        Self::Damaged(reason)
    }
}

impl From<&str> for ReadError {
    fn from(reason: &str) -> Self {
        Self::Damaged(reason.to_owned())
    }
}

/// `Inflate` as a reading error about `what`.
fn inflate_error(what: &str, error: Inflate) -> ReadError {
    match error {
        Inflate::TooLarge { limit } => ReadError::Excessive(format!(
            "{what} inflates to more than {limit} bytes, the most a file of this size may"
        )),
        Inflate::Damaged(e) => ReadError::Damaged(format!("{what} is damaged: {e}")),
    }
}

/// A `/Size` as a count of object numbers, within the PDF's limit.
fn object_count(size: &Object, what: &str) -> Result<u32, ReadError> {
    let size = size
        .as_i64()
        .ok()
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| ReadError::Damaged(format!("{what} has a bad /Size")))?;
    if size > MAX_OBJECT_NUMBER + 1 {
        return Err(ReadError::Excessive(format!(
            "{what} declares a /Size of {size}, beyond the {} objects a PDF may hold",
            MAX_OBJECT_NUMBER + 1
        )));
    }
    Ok(size)
}

/// Where the newest revision that names an object puts it.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Free,
    InUse { offset: usize, generation: u16 },
    Compressed { container: u32 },
}

/// The kind of cross-reference section the newest revision has; an update
/// uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XrefKind {
    Table,
    Stream,
}

/// The file's bytes, its index, and the object streams decoded so far.
pub struct PdfFile<'a> {
    bytes: &'a [u8],
    trailer: Dictionary,
    entries: HashMap<u32, Entry>,
    /// Every in-use object any section places (older revisions too), for `check`.
    placed: Vec<(u32, u16, usize)>,
    /// The offset of the newest section: the update's /Prev.
    last_section: usize,
    kind: XrefKind,
    object_streams: RefCell<HashMap<u32, Rc<lopdf::ObjectStream>>>,
    /// Cross-reference rows the sections may still list (`row_budget`).
    rows_left: usize,
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// An offset written as a direct non-negative integer.
fn offset_value(object: &Object, what: &str) -> Result<usize, String> {
    match object {
        Object::Integer(n) => usize::try_from(*n).map_err(|_| format!("a bad {what}")),
        _ => Err(format!("a bad {what}")),
    }
}

impl<'a> PdfFile<'a> {
    /// Reads the cross-reference chain from `startxref` down every `/Prev`.
    pub fn read(bytes: &'a [u8]) -> Result<Self, ReadError> {
        let tail_start = bytes.len().saturating_sub(2048);
        let keyword = rfind(&bytes[tail_start..], b"startxref")
            .map(|p| tail_start + p)
            .ok_or("no startxref near the end of the file")?;
        let last_section = Reader::new(bytes, keyword + b"startxref".len(), false)
            .unsigned()
            .ok_or("startxref is not followed by an offset")?;
        let mut file = PdfFile {
            bytes,
            trailer: Dictionary::new(),
            entries: HashMap::new(),
            placed: Vec::new(),
            last_section,
            kind: XrefKind::Table,
            object_streams: RefCell::new(HashMap::new()),
            rows_left: row_budget(bytes.len()),
        };
        let mut seen = HashSet::new();
        let mut next = Some(last_section);
        let mut newest = true;
        for _ in 0..MAX_SECTIONS {
            let Some(offset) = next else {
                return Ok(file);
            };
            if !seen.insert(offset) {
                return Err(format!("the cross-reference chain loops back to {offset}").into());
            }
            let mut section = Reader::new(bytes, offset, true);
            let (trailer, kind) = if section.keyword(b"xref") {
                let table = section.xref_entries()?;
                section.skip_white();
                if !section.keyword(b"trailer") {
                    return Err(format!(
                        "the cross-reference section at {offset} is not followed by its trailer"
                    )
                    .into());
                }
                section.skip_white();
                let trailer = section.dictionary(0)?;
                if let Ok(size) = trailer.get(b"Size") {
                    object_count(size, &format!("the trailer at {offset}"))?;
                }
                file.count_rows(table.len())?;
                // A hybrid file (§7.5.8.4): the table first, then its
                // cross-reference stream, whose entries the table may
                // leave free.
                for entry in &table {
                    if let Some(at) = entry.offset {
                        file.place(entry.number, entry.generation, at)?;
                    }
                }
                if let Ok(stream_at) = trailer.get(b"XRefStm") {
                    let stream_at = offset_value(stream_at, "/XRefStm")?;
                    if seen.insert(stream_at) {
                        file.xref_stream(stream_at)?;
                    }
                }
                for entry in &table {
                    if entry.offset.is_none() {
                        file.entries.entry(entry.number).or_insert(Entry::Free);
                    }
                }
                (trailer, XrefKind::Table)
            } else {
                (file.xref_stream(offset)?, XrefKind::Stream)
            };
            next = match trailer.get(b"Prev") {
                Ok(previous) => Some(offset_value(previous, "/Prev")?),
                Err(_) => None,
            };
            if newest {
                file.trailer = trailer;
                file.kind = kind;
                newest = false;
            }
        }
        Err("too many cross-reference sections".to_owned().into())
    }

    /// Takes `rows` from the budget before they are stored.
    fn count_rows(&mut self, rows: usize) -> Result<(), ReadError> {
        if rows > self.rows_left {
            let allowed = row_budget(self.bytes.len());
            return Err(ReadError::Excessive(format!(
                "its cross-reference sections list more than {allowed} entries, the most a \
                 file of {} bytes may list",
                self.bytes.len()
            )));
        }
        self.rows_left -= rows;
        Ok(())
    }

    fn place(&mut self, number: u32, generation: u16, offset: usize) -> Result<(), ReadError> {
        if offset >= self.bytes.len() {
            return Err(ReadError::Damaged(format!(
                "object {number} is placed at {offset}, past the end of the file"
            )));
        }
        self.placed.push((number, generation, offset));
        self.entries
            .entry(number)
            .or_insert(Entry::InUse { offset, generation });
        Ok(())
    }

    /// The cross-reference stream at `offset`: its entries join the index;
    /// its dictionary (the section's trailer) is returned.
    fn xref_stream(&mut self, offset: usize) -> Result<Dictionary, ReadError> {
        let not_here = || format!("no cross-reference stream at {offset}");
        let number = Reader::new(self.bytes, offset, false)
            .object_header()
            .and_then(|(n, _)| u32::try_from(n).ok())
            .ok_or_else(not_here)?;
        let Body::Stream { dict, data_at, .. } =
            Reader::new(self.bytes, offset, true).indirect_object(number, None)?
        else {
            return Err(not_here().into());
        };
        if dict.get(b"Type").and_then(Object::as_name).ok() != Some(b"XRef") {
            return Err(not_here().into());
        }
        let length = dict
            .get(b"Length")
            .map_err(|_| ())
            .and_then(|l| offset_value(l, "").map_err(|_| ()))
            .map_err(|()| {
                format!("the cross-reference stream at {offset} has no direct /Length")
            })?;
        let data = Reader::stream_data(self.bytes, number, data_at, length)?;
        if is_flate(&dict) {
            inflates(data, self.decoded_limit()).map_err(|e| {
                inflate_error(&format!("the cross-reference stream at {offset}"), e)
            })?;
        }
        let stream = lopdf::Stream {
            dict,
            content: data.to_vec(),
            allows_compression: false,
            start_position: Some(data_at),
        };
        let rows = stream
            .get_plain_content_with_limit(self.decoded_limit())
            .map_err(|e| {
                format!("the cross-reference stream at {offset} cannot be decoded: {e}")
            })?;
        let bad = |what: &str| format!("the cross-reference stream at {offset} has a bad {what}");
        let widths: Vec<usize> = stream
            .dict
            .get(b"W")
            .and_then(Object::as_array)
            .map_err(|_| bad("/W"))?
            .iter()
            .map(|w| {
                w.as_i64()
                    .ok()
                    .and_then(|w| usize::try_from(w).ok())
                    .filter(|w| *w <= 8)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad("/W"))?;
        let [kind_width, second_width, third_width] = widths[..] else {
            return Err(bad("/W").into());
        };
        let size = object_count(
            stream.dict.get(b"Size").map_err(|_| bad("/Size"))?,
            &format!("the cross-reference stream at {offset}"),
        )?;
        let index: Vec<u32> = match stream.dict.get(b"Index") {
            Err(_) => vec![0, size],
            Ok(Object::Array(items)) => items
                .iter()
                .map(|i| i.as_i64().ok().and_then(|i| u32::try_from(i).ok()))
                .collect::<Option<_>>()
                .filter(|v: &Vec<u32>| v.len() % 2 == 0)
                .ok_or_else(|| bad("/Index"))?,
            Ok(_) => return Err(bad("/Index").into()),
        };
        let row_width = kind_width + second_width + third_width;
        let field = |row: &[u8], from: usize, width: usize| {
            row[from..from + width]
                .iter()
                .fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
        };
        // Every row names an object number under /Size, and each one is
        // counted before it is stored.
        let mut listed: u64 = 0;
        for pair in index.chunks(2) {
            let end = u64::from(pair[0]) + u64::from(pair[1]);
            listed += u64::from(pair[1]);
            if end > u64::from(size) {
                return Err(ReadError::Excessive(format!(
                    "the cross-reference stream at {offset} lists objects up to {end}, past \
                     its /Size of {size}"
                )));
            }
        }
        let present = rows.len() / row_width.max(1);
        self.count_rows(usize::try_from(listed).unwrap_or(usize::MAX).min(present))?;
        let mut rows = rows.chunks_exact(row_width.max(1));
        for pair in index.chunks(2) {
            let (first, count) = (pair[0], pair[1]);
            for i in 0..count {
                let row = rows
                    .next()
                    .filter(|_| row_width > 0)
                    .ok_or_else(|| format!("the cross-reference stream at {offset} is cut"))?;
                let number = first.checked_add(i).ok_or_else(|| bad("/Index"))?;
                let kind = if kind_width == 0 {
                    1
                } else {
                    field(row, 0, kind_width)
                };
                let second = field(row, kind_width, second_width);
                let third = field(row, kind_width + second_width, third_width);
                match kind {
                    0 => {
                        self.entries.entry(number).or_insert(Entry::Free);
                    }
                    1 => {
                        let offset = usize::try_from(second).map_err(|_| bad("offset"))?;
                        let generation = u16::try_from(third).map_err(|_| bad("generation"))?;
                        self.place(number, generation, offset)?;
                    }
                    2 => {
                        let container = u32::try_from(second).map_err(|_| bad("entry"))?;
                        self.entries
                            .entry(number)
                            .or_insert(Entry::Compressed { container });
                    }
                    // §7.5.8.3: other types read as the null object.
                    _ => {}
                }
            }
        }
        Ok(stream.dict)
    }

    /// What one stream may inflate to: proportional to the file, so a small
    /// file cannot make a large allocation (the seal's memory budget counts
    /// in file sizes).
    fn decoded_limit(&self) -> usize {
        self.bytes
            .len()
            .saturating_mul(4)
            .clamp(MIN_DECODED_LIMIT, MAX_DECODED_LIMIT)
    }

    /// The newest trailer (a cross-reference stream's dictionary, for such files).
    pub fn trailer(&self) -> &Dictionary {
        &self.trailer
    }

    /// The object `id`, parsed strictly.
    pub fn get(&self, id: ObjectId) -> Result<Object, String> {
        self.object(id, true)
    }

    /// The object behind `object`, following references.
    pub fn resolve(&self, object: &Object) -> Result<Object, String> {
        let mut current = object.clone();
        for _ in 0..MAX_HOPS {
            match current {
                Object::Reference(id) => current = self.get(id)?,
                other => return Ok(other),
            }
        }
        Err("a chain of references loops".to_owned())
    }

    /// The dictionary behind `object`, if it is one.
    pub fn dictionary(&self, object: &Object) -> Option<Dictionary> {
        match self.resolve(object).ok()? {
            Object::Dictionary(dictionary) => Some(dictionary),
            _ => None,
        }
    }

    /// The object `id`, if it is a dictionary.
    pub fn dictionary_at(&self, id: ObjectId) -> Option<Dictionary> {
        match self.get(id).ok()? {
            Object::Dictionary(dictionary) => Some(dictionary),
            _ => None,
        }
    }

    /// The trailer's /Root: the catalog's id and dictionary.
    pub fn catalog(&self) -> Result<(ObjectId, Dictionary), String> {
        let id = self
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| "the PDF has no catalog".to_owned())?;
        let catalog = self
            .dictionary_at(id)
            .ok_or_else(|| "the PDF's catalog cannot be read".to_owned())?;
        Ok((id, catalog))
    }

    fn object(&self, id: ObjectId, allow_stream: bool) -> Result<Object, String> {
        let missing = || format!("object {} {} is not in the file", id.0, id.1);
        match self.entries.get(&id.0) {
            Some(Entry::InUse { offset, generation }) if *generation == id.1 => {
                match self.body(id.0, *generation, *offset)? {
                    Body::Value(value) => Ok(value),
                    Body::Stream { .. } if !allow_stream => Err(format!(
                        "object {}: a stream where a number was expected",
                        id.0
                    )),
                    Body::Stream {
                        dict,
                        length,
                        data_at,
                    } => {
                        let data = self.stream_data(id.0, length.as_ref(), data_at)?;
                        Ok(Object::Stream(lopdf::Stream {
                            dict,
                            content: data.to_vec(),
                            allows_compression: false,
                            start_position: Some(data_at),
                        }))
                    }
                }
            }
            Some(Entry::Compressed { container }) if id.1 == 0 => {
                let objects = self.object_stream(*container)?;
                objects
                    .objects
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("object {} is not in its object stream", id.0))
            }
            _ => Err(missing()),
        }
    }

    /// The bytes of object `id`'s value as written (decoded from its object
    /// stream for a compressed one); `None` for a stream.
    pub fn raw_value(&self, id: ObjectId) -> Result<Option<std::borrow::Cow<'a, [u8]>>, String> {
        let missing = || format!("object {} {} is not in the file", id.0, id.1);
        match self.entries.get(&id.0) {
            Some(Entry::InUse { offset, generation }) if *generation == id.1 => {
                let mut reader = Reader::new(self.bytes, *offset, false);
                reader.object_header().ok_or_else(missing)?;
                reader.skip_white();
                let start = reader.at;
                reader.value(0)?;
                let end = reader.at;
                reader.skip_white();
                if reader.keyword(b"stream") {
                    return Ok(None);
                }
                Ok(self.bytes.get(start..end).map(std::borrow::Cow::Borrowed))
            }
            Some(Entry::Compressed { container }) if id.1 == 0 => {
                let Object::Stream(stream) = self.get((*container, 0))? else {
                    return Err(format!("object {container} is not an object stream"));
                };
                let first = stream
                    .dict
                    .get(b"First")
                    .ok()
                    .and_then(|f| offset_value(f, "/First").ok())
                    .ok_or_else(|| format!("object stream {container} has a bad /First"))?;
                let count = stream
                    .dict
                    .get(b"N")
                    .ok()
                    .and_then(|n| offset_value(n, "/N").ok())
                    .ok_or_else(|| format!("object stream {container} has a bad /N"))?;
                let content = stream
                    .get_plain_content_with_limit(self.decoded_limit())
                    .map_err(|e| format!("the object stream {container} cannot be read: {e}"))?;
                let mut header = Reader::new(&content, 0, false);
                let mut at = None;
                for _ in 0..count {
                    let (Some(number), Some(offset)) = (header.unsigned(), header.unsigned())
                    else {
                        return Err(format!("object stream {container} has a bad header"));
                    };
                    if number == id.0 as usize {
                        at = Some(first.saturating_add(offset));
                        break;
                    }
                }
                let at = at.ok_or_else(missing)?;
                let mut reader = Reader::new(&content, at, false);
                reader.value(0)?;
                Ok(content
                    .get(at..reader.at)
                    .map(|raw| std::borrow::Cow::Owned(raw.to_vec())))
            }
            _ => Err(missing()),
        }
    }

    fn body(&self, number: u32, generation: u16, offset: usize) -> Result<Body, String> {
        Reader::new(self.bytes, offset, true).indirect_object(number, Some(generation))
    }

    /// A stream's data, by its /Length (direct, or an indirect number).
    fn stream_data(
        &self,
        number: u32,
        length: Option<&Object>,
        data_at: usize,
    ) -> Result<&'a [u8], String> {
        let length = match length {
            Some(Object::Reference(id)) => self.object(*id, false)?,
            Some(other) => other.clone(),
            None => return Err(format!("object {number}: a stream without /Length")),
        };
        let length =
            offset_value(&length, "/Length").map_err(|e| format!("object {number}: {e}"))?;
        Reader::stream_data(self.bytes, number, data_at, length)
    }

    /// The object stream `container`, decoded once.
    fn object_stream(&self, container: u32) -> Result<Rc<lopdf::ObjectStream>, String> {
        if let Some(decoded) = self.object_streams.borrow().get(&container) {
            return Ok(Rc::clone(decoded));
        }
        // An object stream is itself never in an object stream (§7.5.7).
        let Some(Entry::InUse { .. }) = self.entries.get(&container) else {
            return Err(format!("object stream {container} is not in the file"));
        };
        let Object::Stream(stream) = self.get((container, 0))? else {
            return Err(format!("object {container} is not an object stream"));
        };
        if is_flate(&stream.dict) {
            inflates(&stream.content, self.decoded_limit()).map_err(|e| {
                inflate_error(&format!("the compressed object stream {container}"), e).to_string()
            })?;
        }
        let decoded = lopdf::ObjectStream::new_with_limit(&stream, Some(self.decoded_limit()))
            .map(Rc::new)
            .map_err(|e| format!("the object stream {container} cannot be read: {e}"))?;
        self.object_streams
            .borrow_mut()
            .insert(container, Rc::clone(&decoded));
        Ok(decoded)
    }

    /// Validates every object the sections place, in every revision, without
    /// building it: its header where the table says, a sound value, `endobj`
    /// or a stream whose /Length leads to `endstream`; and every object
    /// stream in use inflates with a sound checksum.
    pub fn check(&self) -> Result<(), ReadError> {
        for &(number, generation, offset) in &self.placed {
            let body =
                Reader::new(self.bytes, offset, false).indirect_object(number, Some(generation))?;
            if let Body::Stream {
                length, data_at, ..
            } = body
            {
                self.stream_data(number, length.as_ref(), data_at)?;
            }
        }
        let containers: HashSet<u32> = self
            .entries
            .values()
            .filter_map(|entry| match entry {
                Entry::Compressed { container } => Some(*container),
                _ => None,
            })
            .collect();
        for container in containers {
            let Some(Entry::InUse { offset, generation }) = self.entries.get(&container) else {
                return Err(format!("object stream {container} is not in the file").into());
            };
            if let Body::Stream {
                dict,
                length,
                data_at,
            } = self.body(container, *generation, *offset)?
                && is_flate(&dict)
            {
                let data = self.stream_data(container, length.as_ref(), data_at)?;
                inflates(data, self.decoded_limit()).map_err(|e| {
                    inflate_error(&format!("the compressed object stream {container}"), e)
                })?;
            }
        }
        Ok(())
    }

    /// The first object number after every number the file uses.
    fn next_number(&self) -> Result<u32, String> {
        let highest = self.entries.keys().copied().max().unwrap_or(0);
        let size = match self.trailer.get(b"Size") {
            Ok(Object::Integer(size)) => u32::try_from(*size).map_err(|_| "a bad trailer /Size")?,
            _ => return Err("the trailer has no /Size".to_owned()),
        };
        Ok(size.max(highest.saturating_add(1)))
    }
}

#[cfg(test)]
mod tests;
