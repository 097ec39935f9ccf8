//! The strict reading of the structure a seal chains to: every classic
//! cross-reference section on the `startxref` / `/Prev` chain, entry by entry
//! as ISO 32000 §7.5.4 lays them out, every trailer dictionary token by token
//! (regular names, unique keys, balanced), and every object those sections
//! place, up to its `endobj` (or its `stream` keyword). Files with
//! cross-reference streams get the same object check through the table lopdf
//! read, and their compressed object streams must inflate with a sound zlib
//! checksum (lopdf ignores a bad one; other readers stop). lopdf reads damaged tables and
//! trailers leniently even when asked to be strict; a seal appended to a file
//! that readers see differently would fail in the stricter ones, so such a
//! file is refused. Cross-reference streams are left to lopdf's strict reader.

/// Sections followed before giving up (a `/Prev` loop is caught before).
const MAX_SECTIONS: usize = 10_000;
/// Dictionary and array nesting in a trailer.
const MAX_DEPTH: usize = 32;

fn is_white(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b'\x0C' | b'\0')
}

fn is_delimiter(byte: u8) -> bool {
    b"()<>[]{}/%".contains(&byte)
}

/// Checks the structure of `pdf`, which lopdf read (strictly) as `document`.
pub fn check(pdf: &[u8], document: &lopdf::Document) -> Result<(), String> {
    if let Some(stream_at) = classic_sections(pdf)? {
        xref_streams(pdf, stream_at)?;
        // Its objects as lopdf's table places them.
        for (number, entry) in &document.reference_table.entries {
            if let lopdf::xref::XrefEntry::Normal { offset, .. } = entry {
                object(pdf, *number as usize, None, *offset as usize)?;
            }
        }
    }
    compressed_streams(document)
}

/// The cross-reference streams from `at` down the `/Prev` chain: each a
/// dictionary with a direct /Length and data that inflates with a sound zlib
/// checksum when it is /FlateDecode (lopdf reads them without the check).
fn xref_streams(pdf: &[u8], mut at: usize) -> Result<(), String> {
    let mut seen = Vec::new();
    for _ in 0..MAX_SECTIONS {
        if seen.contains(&at) {
            return Err(format!("the cross-reference chain loops back to {at}"));
        }
        seen.push(at);
        let mut reader = Reader { pdf, at };
        if reader.object_header().is_none() {
            return Err(format!("no cross-reference stream at {at}"));
        }
        reader.skip_white();
        let keys = reader.dictionary(0)?;
        let text = |key: &[u8]| {
            keys.iter()
                .find(|(k, _)| k == key)
                .map(|(_, (start, end))| String::from_utf8_lossy(&pdf[*start..*end]).into_owned())
        };
        let length: usize = text(b"Length")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("the cross-reference stream at {at} has no direct /Length"))?;
        reader.skip_white();
        if !reader.keyword(b"stream") {
            return Err(format!("the cross-reference stream at {at} has no data"));
        }
        if reader.rest().starts_with(b"\r\n") {
            reader.at += 2;
        } else if reader.rest().starts_with(b"\n") {
            reader.at += 1;
        }
        let data = pdf
            .get(reader.at..reader.at.saturating_add(length))
            .ok_or_else(|| format!("the cross-reference stream at {at} is cut"))?;
        let filter = text(b"Filter").unwrap_or_default();
        let filter: String = filter.chars().filter(|c| !c.is_whitespace()).collect();
        if filter == "/FlateDecode" || filter == "[/FlateDecode]" {
            inflates(data)
                .map_err(|e| format!("the cross-reference stream at {at} is damaged: {e}"))?;
        }
        match text(b"Prev") {
            Some(previous) => {
                at = previous
                    .parse()
                    .map_err(|_| format!("the cross-reference stream at {at} has a bad /Prev"))?;
            }
            None => return Ok(()),
        }
    }
    Err("too many cross-reference sections".to_owned())
}

/// Whether zlib `data` inflates to its end with a sound checksum (the output
/// is dropped as it comes).
fn inflates(data: &[u8]) -> std::io::Result<()> {
    std::io::copy(
        &mut flate2::read::ZlibDecoder::new(data),
        &mut std::io::sink(),
    )
    .map(|_| ())
}

/// Object and cross-reference streams inflate with a sound checksum.
fn compressed_streams(document: &lopdf::Document) -> Result<(), String> {
    for (id, object) in &document.objects {
        let Ok(stream) = object.as_stream() else {
            continue;
        };
        if !(stream.dict.has_type(b"ObjStm") || stream.dict.has_type(b"XRef")) {
            continue;
        }
        let flate = match stream.dict.get(b"Filter") {
            Ok(lopdf::Object::Name(name)) => name == b"FlateDecode",
            Ok(lopdf::Object::Array(filters)) => {
                filters.len() == 1 && filters[0].as_name().ok() == Some(b"FlateDecode")
            }
            _ => false,
        };
        if !flate {
            continue;
        }
        inflates(&stream.content).map_err(|e| {
            format!(
                "the compressed object stream {} {} is damaged: {e}",
                id.0, id.1
            )
        })?;
    }
    Ok(())
}

/// Checks the classic cross-reference sections and trailers of `pdf`, and the
/// objects they place; where the chain leads to a cross-reference stream
/// instead, its offset.
fn classic_sections(pdf: &[u8]) -> Result<Option<usize>, String> {
    let tail_start = pdf.len().saturating_sub(2048);
    let keyword = rfind(&pdf[tail_start..], b"startxref")
        .map(|p| tail_start + p)
        .ok_or("no startxref near the end of the file")?;
    let mut reader = Reader {
        pdf,
        at: keyword + b"startxref".len(),
    };
    let mut offset = reader
        .unsigned()
        .ok_or("startxref is not followed by an offset")?;
    let mut seen = Vec::new();
    for _ in 0..MAX_SECTIONS {
        if seen.contains(&offset) {
            return Err(format!("the cross-reference chain loops back to {offset}"));
        }
        seen.push(offset);
        let mut section = Reader { pdf, at: offset };
        if !section.keyword(b"xref") {
            return Ok(Some(offset));
        }
        let objects = section.xref_entries()?;
        section.skip_white();
        if !section.keyword(b"trailer") {
            return Err(format!(
                "the cross-reference section at {offset} is not followed by its trailer"
            ));
        }
        for (number, generation, at) in objects {
            object(pdf, number, Some(generation), at)?;
        }
        match section.trailer()? {
            Some(previous) => offset = previous,
            None => return Ok(None),
        }
    }
    Err("too many cross-reference sections".to_owned())
}

/// The object `number` at `at`: `number G obj` (G the table's generation,
/// when known), a value, then `endobj`, or a stream dictionary and `stream`
/// (its data is lopdf's to read).
fn object(pdf: &[u8], number: usize, generation: Option<usize>, at: usize) -> Result<(), String> {
    let mut reader = Reader { pdf, at };
    let header = reader.object_header();
    let sound = header.is_some_and(|(found_number, found_generation)| {
        found_number == number && generation.is_none_or(|g| g == found_generation)
    });
    if !sound {
        return Err(format!(
            "object {number} is not where the cross-reference table puts it ({at})"
        ));
    }
    reader.skip_white();
    reader
        .value(0)
        .map_err(|e| format!("object {number}: {e}"))?;
    reader.skip_white();
    if reader.keyword(b"endobj") || reader.keyword(b"stream") {
        Ok(())
    } else {
        Err(format!("object {number} does not end with endobj"))
    }
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// A dictionary's keys, each with the byte span of its value.
type DictionaryKeys = Vec<(Vec<u8>, (usize, usize))>;

struct Reader<'a> {
    pdf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.pdf.get(self.at).copied()
    }

    fn rest(&self) -> &[u8] {
        self.pdf.get(self.at..).unwrap_or_default()
    }

    /// Skips white space and comments.
    fn skip_white(&mut self) {
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

    /// `word` here, followed by white space or a delimiter.
    fn keyword(&mut self, word: &[u8]) -> bool {
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

    /// `N G obj`: the object number and generation.
    fn object_header(&mut self) -> Option<(usize, usize)> {
        let number = self.unsigned()?;
        let generation = self.unsigned()?;
        self.skip_white();
        self.keyword(b"obj").then_some((number, generation))
    }

    fn unsigned(&mut self) -> Option<usize> {
        self.skip_white();
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        std::str::from_utf8(&self.pdf[start..self.at])
            .ok()?
            .parse()
            .ok()
    }

    /// The subsections of a classic section: `first count` on a line, then
    /// `count` entries of exactly 20 bytes, `nnnnnnnnnn ggggg n` and a
    /// two-byte end of line. The objects in use: number, generation, offset.
    fn xref_entries(&mut self) -> Result<Vec<(usize, usize, usize)>, String> {
        let mut in_use = Vec::new();
        loop {
            self.skip_white();
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Ok(in_use);
            }
            let header_at = self.at;
            let (Some(first), Some(count)) = (self.unsigned(), self.unsigned()) else {
                return Err(format!(
                    "a bad cross-reference subsection header at {header_at}"
                ));
            };
            // The header's end of line, then the entries.
            while self.peek().is_some_and(|b| b == b' ' || b == b'\t') {
                self.at += 1;
            }
            match self.peek() {
                Some(b'\r') if self.rest().starts_with(b"\r\n") => self.at += 2,
                Some(b'\r' | b'\n') => self.at += 1,
                _ => {
                    return Err(format!(
                        "a bad cross-reference subsection header at {header_at}"
                    ));
                }
            }
            for index in 0..count {
                let entry = self
                    .pdf
                    .get(self.at..self.at + 20)
                    .ok_or_else(|| format!("the cross-reference table at {header_at} is cut"))?;
                let sound = entry[..10].iter().all(u8::is_ascii_digit)
                    && entry[10] == b' '
                    && entry[11..16].iter().all(u8::is_ascii_digit)
                    && entry[16] == b' '
                    && matches!(entry[17], b'n' | b'f')
                    && matches!(&entry[18..20], b" \r" | b" \n" | b"\r\n");
                if !sound {
                    return Err(format!(
                        "entry {index} of the cross-reference subsection at {header_at} is malformed"
                    ));
                }
                if entry[17] == b'n' {
                    let number = |digits: &[u8]| {
                        std::str::from_utf8(digits)
                            .ok()
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(usize::MAX)
                    };
                    in_use.push((
                        first.saturating_add(index),
                        number(&entry[11..16]),
                        number(&entry[..10]),
                    ));
                }
                self.at += 20;
            }
        }
    }

    /// A trailer dictionary; its `/Prev`, if any.
    fn trailer(&mut self) -> Result<Option<usize>, String> {
        self.skip_white();
        let start = self.at;
        let keys = self.dictionary(0)?;
        let mut previous = None;
        for (key, value) in keys {
            if key == b"Prev" {
                let text = std::str::from_utf8(&self.pdf[value.0..value.1]).unwrap_or_default();
                previous = Some(
                    text.parse()
                        .map_err(|_| format!("the trailer at {start} has a bad /Prev"))?,
                );
            }
        }
        Ok(previous)
    }

    /// A dictionary: its keys, each with the span of its value (for
    /// `/Prev`); names regular, keys unique.
    fn dictionary(&mut self, depth: usize) -> Result<DictionaryKeys, String> {
        let start = self.at;
        if !self.rest().starts_with(b"<<") || depth > MAX_DEPTH {
            return Err(format!("no dictionary at {start}"));
        }
        self.at += 2;
        let mut keys = DictionaryKeys::new();
        loop {
            self.skip_white();
            if self.rest().starts_with(b">>") {
                self.at += 2;
                return Ok(keys);
            }
            if self.peek() != Some(b'/') {
                return Err(format!("a dictionary key at {} is not a name", self.at));
            }
            let key = self.name()?;
            if keys.iter().any(|(k, _)| *k == key) {
                return Err(format!(
                    "the dictionary at {start} defines /{} twice",
                    String::from_utf8_lossy(&key)
                ));
            }
            self.skip_white();
            let value_start = self.at;
            self.value(depth)?;
            keys.push((key, (value_start, self.at)));
        }
    }

    /// A name after its solidus: regular characters only (§7.3.5).
    fn name(&mut self) -> Result<Vec<u8>, String> {
        self.at += 1;
        let start = self.at;
        while let Some(byte) = self.peek() {
            if is_white(byte) || is_delimiter(byte) {
                break;
            }
            if !(0x21..=0x7E).contains(&byte) {
                return Err(format!(
                    "the name at {start} holds byte {byte:#04x}, which must be #-escaped"
                ));
            }
            self.at += 1;
        }
        Ok(self.pdf[start..self.at].to_vec())
    }

    /// Any value; a number followed by `G R` reads as a reference.
    fn value(&mut self, depth: usize) -> Result<(), String> {
        let start = self.at;
        match self.peek() {
            None => Err("the file ends inside a value".to_owned()),
            Some(b'<') if self.rest().starts_with(b"<<") => self.dictionary(depth + 1).map(|_| ()),
            Some(b'<') => {
                self.at += 1;
                while let Some(byte) = self.peek() {
                    self.at += 1;
                    match byte {
                        b'>' => return Ok(()),
                        b if b.is_ascii_hexdigit() || is_white(b) => {}
                        _ => return Err(format!("a bad hex string at {start}")),
                    }
                }
                Err(format!("a hex string at {start} is not closed"))
            }
            Some(b'(') => {
                let mut nesting = 0usize;
                while let Some(byte) = self.peek() {
                    self.at += 1;
                    match byte {
                        b'\\' => self.at += 1,
                        b'(' => nesting += 1,
                        b')' => {
                            nesting -= 1;
                            if nesting == 0 {
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                }
                Err(format!("a string at {start} is not closed"))
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(format!("nesting too deep at {start}"));
                }
                self.at += 1;
                loop {
                    self.skip_white();
                    match self.peek() {
                        Some(b']') => {
                            self.at += 1;
                            return Ok(());
                        }
                        None => return Err(format!("an array at {start} is not closed")),
                        Some(_) => self.value(depth + 1)?,
                    }
                }
            }
            Some(b'/') => self.name().map(|_| ()),
            Some(byte) if is_delimiter(byte) => {
                Err(format!("an unexpected {:?} at {start}", byte as char))
            }
            Some(_) => {
                // A number, keyword (true, false, null) or a reference `N G R`.
                self.token();
                let after_number = self.at;
                let mut look = Reader {
                    pdf: self.pdf,
                    at: self.at,
                };
                look.skip_white();
                if look.peek().is_some_and(|b| b.is_ascii_digit()) {
                    look.token();
                    look.skip_white();
                    if look.keyword(b"R") {
                        self.at = look.at;
                        return Ok(());
                    }
                }
                self.at = after_number;
                if self.at == start {
                    return Err(format!("an unexpected byte at {start}"));
                }
                Ok(())
            }
        }
    }

    fn token(&mut self) {
        while self
            .peek()
            .is_some_and(|b| !is_white(b) && !is_delimiter(b))
        {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf(table: &str, trailer: &str) -> Vec<u8> {
        let body = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
        format!(
            "{body}xref\n{table}trailer\n{trailer}\nstartxref\n{}\n%%EOF\n",
            body.len()
        )
        .into_bytes()
    }

    const TABLE: &str = "0 2\n0000000000 65535 f \n0000000009 00000 n \n";

    #[test]
    fn a_sound_table_and_trailer_pass() {
        let trailer =
            "<< /Size 2 /Root 1 0 R /ID [<00AB> <cd 12>] /Info << /T (a\\) (b)) /N#e9 /x >> >>";
        assert_eq!(classic_sections(&pdf(TABLE, trailer)), Ok(None));
        let crlf = "0 2\r\n0000000000 65535 f\r\n0000000009 00000 n\r\n";
        assert_eq!(
            classic_sections(&pdf(crlf, "<< /Size 2 /Root 1 0 R >>")),
            Ok(None)
        );
    }

    #[test]
    fn damaged_tables_and_trailers_are_named() {
        for (table, trailer, words) in [
            (
                "0 2\n0000000000 65535 f \n000000009 00000 n \n",
                "<< /Size 2 >>",
                "malformed",
            ),
            (
                "0 2\n0000000000 65535 f \n0000000009 00000 n\n",
                "<< /Size 2 >>",
                "malformed",
            ),
            (
                "0 3\n0000000000 65535 f \n0000000009 00000 n \n",
                "<< /Size 2 >>",
                "malformed",
            ),
            ("0 2 x\n", "<< /Size 2 >>", "header"),
            (TABLE, "<< /Size 2 /Size 3 >>", "twice"),
            (TABLE, "<< /R\u{e7}oot 1 0 R >>", "escaped"),
            (TABLE, "<< /Size 2 /ID [<0g>] >>", "hex"),
            (TABLE, "<< /Size 2 /Prev x >>", "bad /Prev"),
            (TABLE, "<< 2 /Size >>", "not a name"),
            (TABLE, "<< /Size 2 /ID [1 2 >>", "unexpected"),
        ] {
            let error = classic_sections(&pdf(table, trailer)).unwrap_err();
            assert!(error.contains(words), "{table:?} {trailer:?}: {error}");
        }
    }

    #[test]
    fn damaged_objects_are_named() {
        let table = |offset: usize| format!("0 2\n0000000000 65535 f \n{offset:010} 00000 n \n");
        for (object, words) in [
            ("1 0 obj\n<< /T\u{3}ype /Catalog >>\nendobj\n", "escaped"),
            ("1 0 obj\n<< /Type /Catalog /Type /X >>\nendobj\n", "twice"),
            ("1 0 obj\n<< /Type /Catalog >>\nen\u{97}obj\n", "endobj"),
            ("2 0 obj\n<< /Type /Catalog >>\nendobj\n", "not where"),
            ("1 3 obj\n<< /Type /Catalog >>\nendobj\n", "not where"),
            ("1 0 obj\n<< /Type /Catalog\nendobj\n", "not a name"),
        ] {
            let body = format!("%PDF-1.4\n{object}");
            let text = format!(
                "{body}xref\n{}trailer\n<< /Size 2 >>\nstartxref\n{}\n%%EOF\n",
                table(9),
                body.len()
            );
            let error = classic_sections(text.as_bytes()).unwrap_err();
            assert!(error.contains(words), "{object:?}: {error}");
        }
        let stream =
            "%PDF-1.4\n1 0 obj\n<< /Length 3 >>\nstream\n\u{ff}\u{fe}\u{fd}\nendstream\nendobj\n";
        let text = format!(
            "{stream}xref\n{}trailer\n<< /Size 2 >>\nstartxref\n{}\n%%EOF\n",
            table(9),
            stream.len()
        );
        assert_eq!(classic_sections(text.as_bytes()), Ok(None));
    }

    #[test]
    fn a_cross_reference_stream_must_inflate_with_its_checksum() {
        use std::io::Write as _;
        let mut deflater =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        deflater.write_all(&[0u8; 12]).unwrap();
        let mut data = deflater.finish().unwrap();
        let stream = |data: &[u8]| {
            let mut pdf = b"%PDF-1.5\n".to_vec();
            let at = pdf.len();
            pdf.extend_from_slice(
                format!(
                    "1 0 obj\n<< /Type /XRef /Size 2 /W [1 2 1] /Length {} /Filter /FlateDecode >>\nstream\n",
                    data.len()
                )
                .as_bytes(),
            );
            pdf.extend_from_slice(data);
            pdf.extend_from_slice(
                format!("\nendstream\nendobj\nstartxref\n{at}\n%%EOF\n").as_bytes(),
            );
            (pdf, at)
        };
        let (sound, at) = stream(&data);
        assert_eq!(xref_streams(&sound, at), Ok(()));
        let last = data.len() - 1;
        data[last] ^= 0xFF;
        let (damaged, at) = stream(&data);
        assert!(xref_streams(&damaged, at).unwrap_err().contains("damaged"));
    }

    #[test]
    fn a_prev_loop_and_a_missing_startxref_are_refused() {
        let body = "%PDF-1.4\n";
        let xref_at = body.len();
        let looped = format!(
            "{body}xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 /Prev {xref_at} >>\nstartxref\n{xref_at}\n%%EOF\n"
        );
        assert!(
            classic_sections(looped.as_bytes())
                .unwrap_err()
                .contains("loops")
        );
        assert!(
            classic_sections(b"%PDF-1.4\n")
                .unwrap_err()
                .contains("startxref")
        );
    }
}
