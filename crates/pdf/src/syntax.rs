//! PDF syntax read strictly (ISO 32000 §7.2–7.5): objects as lopdf values,
//! classic cross-reference entries exactly as §7.5.4 lays them out, and
//! trailers. A seal chains to what it reads; a file that different readers
//! could see differently (irregular names, a key defined twice, a table entry
//! one byte off, an object that is not where its table says) is refused
//! rather than guessed at, because the seal would then fail in the stricter
//! readers. The same parser validates (without building values) and reads.

use lopdf::{Dictionary, Object, StringFormat};

mod values;

/// Dictionary and array nesting in one object.
pub(crate) const MAX_DEPTH: usize = 32;

/// Character classes (§7.2.2), looked up rather than compared: the whole
/// file goes through these when it is checked.
const WHITE: u8 = 1;
const DELIMITER: u8 = 2;
/// Regular characters that may stand unescaped in a name (§7.3.5).
const NAME: u8 = 4;
static CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut byte = 0x21;
    while byte <= 0x7E {
        classes[byte] = NAME;
        byte += 1;
    }
    let white = b" \t\r\n\x0C\0";
    let mut i = 0;
    while i < white.len() {
        classes[white[i] as usize] = WHITE;
        i += 1;
    }
    let delimiters = b"()<>[]{}/%";
    let mut i = 0;
    while i < delimiters.len() {
        classes[delimiters[i] as usize] = DELIMITER;
        i += 1;
    }
    classes
};

fn is_white(byte: u8) -> bool {
    CLASSES[usize::from(byte)] & WHITE != 0
}

fn is_delimiter(byte: u8) -> bool {
    CLASSES[usize::from(byte)] & DELIMITER != 0
}

/// Part of a token: neither white space nor a delimiter.
fn is_regular(byte: u8) -> bool {
    CLASSES[usize::from(byte)] & (WHITE | DELIMITER) == 0
}

/// One entry of a classic cross-reference subsection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableEntry {
    pub number: u32,
    pub generation: u16,
    /// The object's offset when in use; `None` for a free entry.
    pub offset: Option<usize>,
}

/// How an indirect object's body ends.
#[derive(Debug)]
pub(crate) enum Body {
    /// `endobj` after the value.
    Value(Object),
    /// A stream: its dictionary (empty when not building), its /Length as
    /// written (a number or a reference), and where its data starts (just
    /// past the end of line after `stream`).
    Stream {
        dict: Dictionary,
        length: Option<Object>,
        data_at: usize,
    },
}

/// Where one entry of a dictionary lies in the bytes: its key (decoded),
/// where the key as written starts, where its value starts, and where the
/// value ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntrySpan {
    pub key: Vec<u8>,
    pub key_start: usize,
    pub value_start: usize,
    pub end: usize,
}

/// A cursor over the file. With `build` false it only validates, and the
/// values it returns are `Null` placeholders (no allocation per object).
pub(crate) struct Reader<'a> {
    pub pdf: &'a [u8],
    pub at: usize,
    pub build: bool,
    /// The keys of the dictionaries being read, innermost last, for the
    /// uniqueness check when not building (one buffer for the whole read).
    keys: Vec<&'a [u8]>,
    /// The /Length of the object's own dictionary, read even when not
    /// building (a stream's data is found by it).
    length: Option<Object>,
}

impl<'a> Reader<'a> {
    /// A reader at `at`, or at the end when `at` lies past it (an offset
    /// read from the file may point anywhere).
    pub(crate) fn new(pdf: &'a [u8], at: usize, build: bool) -> Self {
        Self {
            pdf,
            at: at.min(pdf.len()),
            build,
            keys: Vec::new(),
            length: None,
        }
    }

    /// The bytes from `start` to here.
    fn since(&self, start: usize) -> &'a [u8] {
        self.pdf.get(start..self.at).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.pdf.get(self.at).copied()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.pdf.get(self.at..).unwrap_or_default()
    }

    /// Skips white space and comments.
    pub(crate) fn skip_white(&mut self) {
        while let Some(byte) = self.peek() {
            if is_white(byte) {
                self.at += 1;
            } else if byte == b'%' {
                while self.peek().is_some_and(|b| b != b'\r' && b != b'\n') {
                    self.at += 1;
                }
            } else {
                break;
            }
        }
    }

    /// `word` here, followed by white space, a delimiter or the end.
    pub(crate) fn keyword(&mut self, word: &[u8]) -> bool {
        let rest = self.rest();
        let ends = rest
            .get(word.len())
            .is_none_or(|b| is_white(*b) || is_delimiter(*b));
        if rest.starts_with(word) && ends {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// An unsigned decimal integer after optional white space.
    pub(crate) fn unsigned(&mut self) -> Option<usize> {
        self.skip_white();
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        decimal(self.since(start))
    }

    /// `N G obj`: the object number and generation.
    pub(crate) fn object_header(&mut self) -> Option<(usize, usize)> {
        let number = self.unsigned()?;
        let generation = self.unsigned()?;
        self.skip_white();
        self.keyword(b"obj").then_some((number, generation))
    }

    /// The indirect object `number` (and `generation`, when the caller knows
    /// it) at this offset: its header, its value, then `endobj`, or a
    /// stream dictionary and `stream` and its end of line.
    pub(crate) fn indirect_object(
        &mut self,
        number: u32,
        generation: Option<u16>,
    ) -> Result<Body, String> {
        let at = self.at;
        let sound = self.object_header().is_some_and(|(n, g)| {
            n == number as usize && generation.is_none_or(|wanted| wanted as usize == g)
        });
        if !sound {
            return Err(format!(
                "object {number} is not where the cross-reference table puts it ({at})"
            ));
        }
        self.skip_white();
        let value = self.value(0).map_err(|e| format!("object {number}: {e}"))?;
        self.skip_white();
        if self.keyword(b"endobj") {
            return Ok(Body::Value(value));
        }
        if !self.keyword(b"stream") {
            return Err(format!("object {number} does not end with endobj"));
        }
        let Object::Dictionary(dict) = value else {
            return Err(format!("object {number}: a stream without a dictionary"));
        };
        // §7.3.8.1: `stream` is followed by CRLF or LF, not CR alone.
        if self.rest().starts_with(b"\r\n") {
            self.at += 2;
        } else if self.rest().starts_with(b"\n") {
            self.at += 1;
        } else {
            return Err(format!(
                "object {number}: the stream keyword is not followed by an end of line"
            ));
        }
        Ok(Body::Stream {
            dict,
            length: self.length.take(),
            data_at: self.at,
        })
    }

    /// Stream data of `length` bytes at `data_at`, then an optional end of
    /// line and `endstream`; the data.
    pub(crate) fn stream_data(
        pdf: &'a [u8],
        number: u32,
        data_at: usize,
        length: usize,
    ) -> Result<&'a [u8], String> {
        let data = data_at
            .checked_add(length)
            .and_then(|end| pdf.get(data_at..end))
            .ok_or_else(|| format!("object {number}: the stream's /Length runs past the file"))?;
        let mut after = Reader::new(pdf, data_at + length, false);
        after.skip_white();
        if !after.keyword(b"endstream") {
            return Err(format!(
                "object {number}: the stream does not end where its /Length says"
            ));
        }
        Ok(data)
    }

    /// The subsections of a classic section: `first count` on a line, then
    /// `count` entries of exactly 20 bytes, `nnnnnnnnnn ggggg n` and a
    /// two-byte end of line.
    pub(crate) fn xref_entries(&mut self) -> Result<Vec<TableEntry>, String> {
        let mut entries = Vec::new();
        loop {
            self.skip_white();
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Ok(entries);
            }
            let header_at = self.at;
            let bad_header = || format!("a bad cross-reference subsection header at {header_at}");
            let (Some(first), Some(count)) = (self.unsigned(), self.unsigned()) else {
                return Err(bad_header());
            };
            // The header's end of line, then the entries.
            while self.peek().is_some_and(|b| b == b' ' || b == b'\t') {
                self.at += 1;
            }
            match self.peek() {
                Some(b'\r') if self.rest().starts_with(b"\r\n") => self.at += 2,
                Some(b'\r' | b'\n') => self.at += 1,
                _ => return Err(bad_header()),
            }
            for index in 0..count {
                let entry = self
                    .pdf
                    .get(self.at..self.at.saturating_add(20))
                    .ok_or_else(|| format!("the cross-reference table at {header_at} is cut"))?;
                let sound = entry[..10].iter().all(u8::is_ascii_digit)
                    && entry[10] == b' '
                    && entry[11..16].iter().all(u8::is_ascii_digit)
                    && entry[16] == b' '
                    && matches!(entry[17], b'n' | b'f')
                    && matches!(&entry[18..20], b" \r" | b" \n" | b"\r\n");
                let number = first.checked_add(index).and_then(|n| u32::try_from(n).ok());
                let generation = decimal(&entry[11..16]).and_then(|g| u16::try_from(g).ok());
                let (true, Some(number), Some(generation)) = (sound, number, generation) else {
                    return Err(format!(
                        "entry {index} of the cross-reference subsection at {header_at} is malformed"
                    ));
                };
                let offset = if entry[17] == b'n' {
                    Some(decimal(&entry[..10]).ok_or_else(bad_header)?)
                } else {
                    None
                };
                entries.push(TableEntry {
                    number,
                    generation,
                    offset,
                });
                self.at += 20;
            }
        }
    }

    /// A dictionary (`<<` here); built when the reader builds.
    pub(crate) fn dictionary(&mut self, depth: usize) -> Result<Dictionary, String> {
        let start = self.at;
        if !self.rest().starts_with(b"<<") {
            return Err(format!("no dictionary at {start}"));
        }
        if depth > MAX_DEPTH {
            return Err(format!("nesting too deep at {start}"));
        }
        self.at += 2;
        let mut dictionary = Dictionary::new();
        let first_key = self.keys.len();
        loop {
            self.skip_white();
            if self.rest().starts_with(b">>") {
                self.at += 2;
                self.keys.truncate(first_key);
                return Ok(dictionary);
            }
            if self.peek() != Some(b'/') {
                return Err(format!("a dictionary key at {} is not a name", self.at));
            }
            let raw = self.raw_name()?;
            let twice = || {
                format!(
                    "the dictionary at {start} defines /{} twice",
                    String::from_utf8_lossy(raw)
                )
            };
            self.skip_white();
            if self.build {
                let key = decode_name(raw);
                if dictionary.has(&key) {
                    return Err(twice());
                }
                let value = self.value(depth + 1)?;
                if depth == 0 && key == b"Length" {
                    self.length = Some(value.clone());
                }
                dictionary.set(key, value);
            } else {
                if self.keys[first_key..].contains(&raw) {
                    return Err(twice());
                }
                self.keys.push(raw);
                if depth == 0 && raw == b"Length" {
                    // Built: a number or a reference, nothing to allocate.
                    self.build = true;
                    let value = self.value(depth + 1);
                    self.build = false;
                    self.length = Some(value?);
                } else {
                    self.value(depth + 1)?;
                }
            }
        }
    }

    /// The entries of the dictionary here (`<<`), as spans of the bytes,
    /// in the order written; the reader ends past its `>>`.
    pub(crate) fn dictionary_spans(&mut self) -> Result<Vec<EntrySpan>, String> {
        let start = self.at;
        if !self.rest().starts_with(b"<<") {
            return Err(format!("no dictionary at {start}"));
        }
        self.at += 2;
        let mut entries = Vec::new();
        loop {
            self.skip_white();
            if self.rest().starts_with(b">>") {
                self.at += 2;
                return Ok(entries);
            }
            if self.peek() != Some(b'/') {
                return Err(format!("a dictionary key at {} is not a name", self.at));
            }
            let key_start = self.at;
            let key = decode_name(self.raw_name()?);
            self.skip_white();
            let value_start = self.at;
            self.value(1)?;
            entries.push(EntrySpan {
                key,
                key_start,
                value_start,
                end: self.at,
            });
        }
    }

    /// A name's bytes after its solidus, `#` escapes undecoded: regular
    /// characters only (§7.3.5).
    fn raw_name(&mut self) -> Result<&'a [u8], String> {
        self.at += 1;
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| CLASSES[usize::from(b)] & NAME != 0 && !is_delimiter(b))
        {
            self.at += 1;
        }
        if let Some(byte) = self.peek()
            && is_regular(byte)
        {
            return Err(format!(
                "the name at {start} holds byte {byte:#04x}, which must be #-escaped"
            ));
        }
        let raw = self.since(start);
        // `#` must introduce two hex digits.
        if raw.contains(&b'#') {
            let mut i = 0;
            while i < raw.len() {
                if raw[i] == b'#' {
                    if !raw
                        .get(i + 1..i + 3)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                    {
                        return Err(format!("the name at {start} has a bad # escape"));
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
        Ok(raw)
    }
}

/// An unsigned decimal number of ASCII digits, if it fits.
pub(crate) fn decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |value, digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        value
            .checked_mul(10)?
            .checked_add(usize::from(digit - b'0'))
    })
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// A name's bytes with its `#xx` escapes decoded (checked by `raw_name`).
fn decode_name(raw: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'#' && i + 2 < raw.len() {
            name.push((hex_value(raw[i + 1]) << 4) | hex_value(raw[i + 2]));
            i += 3;
        } else {
            name.push(raw[i]);
            i += 1;
        }
    }
    name
}

/// Why a zlib stream was not inflated.
#[derive(Debug)]
pub(crate) enum Inflate {
    /// It would inflate to more than the limit: stopped there.
    TooLarge { limit: usize },
    /// It is damaged, or its checksum is wrong.
    Damaged(std::io::Error),
}

/// Whether zlib `data` inflates to its end, to at most `limit` bytes, with a
/// sound checksum (the output is dropped as it comes, and no more than
/// `limit` + 1 bytes are ever produced). lopdf inflates without the check;
/// other readers stop at a bad one.
pub(crate) fn inflates(data: &[u8], limit: usize) -> Result<(), Inflate> {
    use std::io::Read as _;
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let produced = std::io::copy(
        &mut flate2::read::ZlibDecoder::new(data).take(cap),
        &mut std::io::sink(),
    )
    .map_err(Inflate::Damaged)?;
    if produced >= cap {
        Err(Inflate::TooLarge { limit })
    } else {
        Ok(())
    }
}

/// Whether a stream dictionary's only filter is FlateDecode.
pub(crate) fn is_flate(dict: &Dictionary) -> bool {
    match dict.get(b"Filter") {
        Ok(Object::Name(name)) => name == b"FlateDecode",
        Ok(Object::Array(filters)) => {
            filters.len() == 1 && filters[0].as_name().ok() == Some(b"FlateDecode")
        }
        _ => false,
    }
}
