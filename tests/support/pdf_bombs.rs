//! Generated PDF bombs: small files that would cost a reader far more memory
//! or CPU than their size if it trusted what they declare. Shared by the
//! refusal tests and the bomb bench (`benches/pdf_bombs.rs`).

use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;

/// Rows of one section of the cross-reference row bomb: five sections stay
/// under the 8,388,608 object numbers a PDF may use, so only the count of
/// rows betrays them.
pub(crate) const BOMB_ROWS: usize = 1_600_000;
/// Rows of one section as the reproduced bomb had them (4 MiB): five
/// sections name more objects than a PDF may hold.
pub(crate) const REPRODUCED_BOMB_ROWS: usize = 4 << 20;

/// `n` bytes of `byte`, zlib-compressed without holding them.
pub(crate) fn deflate_repeated(byte: u8, n: usize) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    let chunk = vec![byte; 1 << 16];
    let mut left = n;
    while left > 0 {
        let take = left.min(chunk.len());
        encoder.write_all(&chunk[..take]).unwrap();
        left -= take;
    }
    encoder.finish().unwrap()
}

/// A PDF being written: objects appended, their offsets kept.
struct Writer {
    bytes: Vec<u8>,
    offsets: Vec<(u32, usize)>,
}

impl Writer {
    /// The header and a catalog (1), its page tree (2) and one page (3).
    fn new() -> Self {
        let mut writer = Self {
            bytes: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(),
            offsets: Vec::new(),
        };
        writer.object(1, b"<< /Type /Catalog /Pages 2 0 R >>");
        writer.object(2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
        writer.object(
            3,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> >>",
        );
        writer
    }

    fn object(&mut self, number: u32, body: &[u8]) -> usize {
        let at = self.bytes.len();
        self.offsets.push((number, at));
        self.bytes
            .extend_from_slice(format!("{number} 0 obj\n").as_bytes());
        self.bytes.extend_from_slice(body);
        self.bytes.extend_from_slice(b"\nendobj\n");
        at
    }

    fn stream(&mut self, number: u32, dict: &str, data: &[u8]) -> usize {
        let mut body = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\nendstream");
        self.object(number, &body)
    }

    fn finish(mut self, startxref: usize) -> Vec<u8> {
        self.bytes
            .extend_from_slice(format!("startxref\n{startxref}\n%%EOF\n").as_bytes());
        self.bytes
    }

    /// A cross-reference stream (object `number`) placing objects 0..=number
    /// as written, with `/W [1 4 2]`; `extra` goes into its dictionary.
    fn xref_stream(&mut self, number: u32, compressed: &[(u32, u32, u16)], extra: &str) -> usize {
        let at = self.bytes.len();
        let mut rows = Vec::new();
        for n in 0..=number {
            let placed = self.offsets.iter().find(|(o, _)| *o == n).map(|(_, a)| *a);
            let packed = compressed.iter().find(|(o, _, _)| *o == n);
            let (kind, second, third): (u8, u32, u16) = match (n, placed, packed) {
                (_, _, Some((_, container, index))) => (2, *container, *index),
                (n, _, _) if n == number => (1, u32::try_from(at).unwrap(), 0),
                (_, Some(offset), _) => (1, u32::try_from(offset).unwrap(), 0),
                _ => (0, 0, 0),
            };
            rows.push(kind);
            rows.extend_from_slice(&second.to_be_bytes());
            rows.extend_from_slice(&third.to_be_bytes());
        }
        let dict = format!(
            "/Type /XRef /Size {} /W [1 4 2] /Root 1 0 R /Filter /FlateDecode {extra}",
            number + 1
        );
        self.stream(number, &dict, &deflate_repeated_rows(&rows))
    }
}

fn deflate_repeated_rows(rows: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(rows).unwrap();
    encoder.finish().unwrap()
}

/// Five cross-reference streams of `/W [1 0 0]`, each `rows` one-byte rows
/// (all "in use at offset 0") over its own `/Index` range, chained by
/// `/Prev`: about 4 KB per section for 4 MiB rows.
pub(crate) fn xref_row_bomb(rows: usize) -> Vec<u8> {
    let mut w = Writer::new();
    let first_section = w.xref_stream(4, &[], "");
    let mut previous = first_section;
    let data = deflate_repeated(1, rows);
    for k in 0..5u32 {
        let number = 5 + k;
        let start = 16 + (k as usize) * rows;
        let size = 16 + 5 * rows;
        let dict = format!(
            "/Type /XRef /Size {size} /W [1 0 0] /Index [{start} {rows}] /Root 1 0 R \
             /Prev {previous} /Filter /FlateDecode"
        );
        previous = w.stream(number, &dict, &data);
    }
    w.finish(previous)
}

/// An object stream whose one object is followed by `decoded` bytes of
/// spaces, about 1000 times smaller compressed.
pub(crate) fn object_stream_bomb(decoded: usize) -> Vec<u8> {
    let mut w = Writer::new();
    let header = b"5 0 ";
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(header).unwrap();
    encoder.write_all(b"<< /Bomb true >>").unwrap();
    let chunk = vec![b' '; 1 << 16];
    let mut left = decoded;
    while left > 0 {
        let take = left.min(chunk.len());
        encoder.write_all(&chunk[..take]).unwrap();
        left -= take;
    }
    let data = encoder.finish().unwrap();
    w.stream(
        4,
        &format!(
            "/Type /ObjStm /N 1 /First {} /Filter /FlateDecode",
            header.len()
        ),
        &data,
    );
    let at = w.xref_stream(6, &[(5, 4, 0)], "");
    w.finish(at)
}

/// A cross-reference stream whose rows are followed by `decoded` bytes of
/// zeros: a 1000:1 deflate stream where the reader expects a few rows.
pub(crate) fn deflate_ratio_bomb(decoded: usize) -> Vec<u8> {
    let mut w = Writer::new();
    let at = w.bytes.len();
    let mut rows = Vec::new();
    for n in 0..=4u32 {
        let (kind, offset) = match w.offsets.iter().find(|(o, _)| *o == n) {
            Some((_, offset)) => (1u8, u32::try_from(*offset).unwrap()),
            None if n == 4 => (1, u32::try_from(at).unwrap()),
            None => (0, 0),
        };
        rows.push(kind);
        rows.extend_from_slice(&offset.to_be_bytes());
        rows.extend_from_slice(&0u16.to_be_bytes());
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&rows).unwrap();
    let chunk = vec![0u8; 1 << 16];
    let mut left = decoded;
    while left > 0 {
        let take = left.min(chunk.len());
        encoder.write_all(&chunk[..take]).unwrap();
        left -= take;
    }
    let data = encoder.finish().unwrap();
    w.stream(
        4,
        "/Type /XRef /Size 5 /W [1 4 2] /Root 1 0 R /Filter /FlateDecode",
        &data,
    );
    w.finish(at)
}

/// A cross-reference stream declaring `/Size` 2^31 - 1, with `/Index`
/// ranges near the top: object numbers no file of this size can hold.
pub(crate) fn huge_size_bomb() -> Vec<u8> {
    let mut w = Writer::new();
    let previous = w.xref_stream(4, &[], "");
    let data = deflate_repeated_rows(&[1u8; 3]);
    let dict = format!(
        "/Type /XRef /Size 2147483647 /W [1 0 0] /Index [1000000 1 2000000000 1 2147483645 1] \
         /Root 1 0 R /Prev {previous} /Filter /FlateDecode"
    );
    let at = w.stream(5, &dict, &data);
    w.finish(at)
}

/// A sound file of the same make (catalog, page, one cross-reference
/// stream), padded to about `size` bytes with a comment: the control.
pub(crate) fn sound_file(size: usize) -> Vec<u8> {
    let mut w = Writer::new();
    let padding = size.saturating_sub(600);
    let mut filler = Vec::with_capacity(padding + 64);
    while filler.len() < padding {
        filler.extend_from_slice(b"% padding of the control file, as a comment line\n");
    }
    w.bytes.extend_from_slice(&filler);
    let at = w.xref_stream(4, &[], "");
    w.finish(at)
}
