//! The lazy PDF reader's and the incremental update's unit tests.

use super::*;

/// A file and every object validated: what sealing asks first.
fn read_and_check(pdf: &[u8]) -> Result<(), String> {
    PdfFile::read(pdf)
        .and_then(|file| file.check())
        .map_err(|e| e.to_string())
}

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
    let file = pdf(TABLE, trailer);
    assert_eq!(read_and_check(&file), Ok(()));
    let read = PdfFile::read(&file).unwrap();
    assert_eq!(
        read.trailer().get(b"ID").unwrap(),
        &Object::Array(vec![
            Object::String(vec![0x00, 0xAB], StringFormat::Hexadecimal),
            Object::String(vec![0xCD, 0x12], StringFormat::Hexadecimal),
        ])
    );
    let info = read.trailer().get(b"Info").unwrap().as_dict().unwrap();
    assert_eq!(info.get(b"T").unwrap().as_str().unwrap(), b"a) (b)");
    assert_eq!(info.get(b"N\xe9").unwrap().as_name().unwrap(), b"x");
    let crlf = "0 2\r\n0000000000 65535 f\r\n0000000009 00000 n\r\n";
    assert_eq!(
        read_and_check(&pdf(crlf, "<< /Size 2 /Root 1 0 R >>")),
        Ok(())
    );
}

use lopdf::StringFormat;

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
        (TABLE, "<< /Size 2 /Prev (x) >>", "bad /Prev"),
        (TABLE, "<< /Size 2 /Prev x >>", "unexpected"),
        (TABLE, "<< 2 /Size >>", "not a name"),
        (TABLE, "<< /Size 2 /ID [1 2 >>", "unexpected"),
        (TABLE, "<< /Size 1e9 >>", "unexpected"),
        (TABLE, "<< /Size 99999999999999999999999 >>", "out of range"),
        (TABLE, "<< /Size 2 /N#4 >>", "# escape"),
    ] {
        let error = read_and_check(&pdf(table, trailer)).unwrap_err();
        assert!(error.contains(words), "{table:?} {trailer:?}: {error}");
    }
}

/// A one-object file whose object 1 is `object`.
fn one_object(object: &str) -> Vec<u8> {
    let body = format!("%PDF-1.4\n{object}");
    format!(
        "{body}xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n{}\n%%EOF\n",
        body.len()
    )
    .into_bytes()
}

#[test]
fn damaged_objects_are_named() {
    for (object, words) in [
        ("1 0 obj\n<< /T\u{3}ype /Catalog >>\nendobj\n", "escaped"),
        ("1 0 obj\n<< /Type /Catalog /Type /X >>\nendobj\n", "twice"),
        ("1 0 obj\n<< /Type /Catalog >>\nen\u{97}obj\n", "endobj"),
        ("2 0 obj\n<< /Type /Catalog >>\nendobj\n", "not where"),
        ("1 3 obj\n<< /Type /Catalog >>\nendobj\n", "not where"),
        ("1 0 obj\n<< /Type /Catalog\nendobj\n", "not a name"),
        (
            "1 0 obj\n<< /Length 2 >>\nstream\nabc\nendstream\nendobj\n",
            "/Length",
        ),
        (
            "1 0 obj\n<< /Length 999 >>\nstream\nabc\nendstream\nendobj\n",
            "past the file",
        ),
        (
            "1 0 obj\n<< /Length 3 >>\nstream abc\nendstream\nendobj\n",
            "end of line",
        ),
        (
            "1 0 obj\n<< /Length 2 0 R >>\nstream\nabc\nendstream\nendobj\n",
            "not in the file",
        ),
        (
            &format!(
                "1 0 obj\n{}1{}\nendobj\n",
                "[".repeat(10_001),
                "]".repeat(10_001)
            ),
            "too deep",
        ),
    ] {
        let error = read_and_check(&one_object(object)).expect_err(object);
        assert!(error.contains(words), "{object:?}: {error}");
    }
    let stream = "1 0 obj\n<< /Length 6 >>\nstream\n\u{ff}\u{fe}\u{fd}\nendstream\nendobj\n";
    assert_eq!(read_and_check(&one_object(stream)), Ok(()));
}

#[test]
fn values_read_as_written() {
    let object = "1 0 obj\n<< /Type /Catalog /A [1 -2 +3 4.5 -.5 true false null 12 0 R (x\\(\\)\\101\\n(y)) <41 42 4> /A#20B] >>\nendobj\n";
    let file = one_object(object);
    let read = PdfFile::read(&file).unwrap();
    let catalog = read.get((1, 0)).unwrap();
    let items = catalog
        .as_dict()
        .unwrap()
        .get(b"A")
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        items,
        vec![
            Object::Integer(1),
            Object::Integer(-2),
            Object::Integer(3),
            Object::Real(4.5),
            Object::Real(-0.5),
            Object::Boolean(true),
            Object::Boolean(false),
            Object::Null,
            Object::Reference((12, 0)),
            Object::String(b"x()A\n(y)".to_vec(), StringFormat::Literal),
            Object::String(b"AB@".to_vec(), StringFormat::Hexadecimal),
            Object::Name(b"A B".to_vec()),
        ]
    );
    assert!(read.get((2, 0)).is_err());
    assert!(read.get((1, 1)).is_err());
}

#[test]
fn a_cross_reference_stream_must_inflate_with_its_checksum() {
    use std::io::Write as _;
    // Object 1 (a catalog) at 9, and the stream itself, object 2.
    let body = "%PDF-1.5\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
    let stream_at = body.len();
    let rows = [[0u8, 0, 0, 0xFF], [1, 0, 9, 0], [1, 0, stream_at as u8, 0]].concat();
    let mut deflater = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    deflater.write_all(&rows).unwrap();
    let mut data = deflater.finish().unwrap();
    let stream = |data: &[u8]| {
        let mut pdf = body.as_bytes().to_vec();
        pdf.extend_from_slice(
            format!(
                "2 0 obj\n<< /Type /XRef /Size 3 /W [1 2 1] /Root 1 0 R /Length {} /Filter /FlateDecode >>\nstream\n",
                data.len()
            )
            .as_bytes(),
        );
        pdf.extend_from_slice(data);
        pdf.extend_from_slice(
            format!("\nendstream\nendobj\nstartxref\n{stream_at}\n%%EOF\n").as_bytes(),
        );
        pdf
    };
    let sound = stream(&data);
    assert_eq!(read_and_check(&sound), Ok(()));
    let read = PdfFile::read(&sound).unwrap();
    assert_eq!(read.kind, XrefKind::Stream);
    assert!(
        read.get((1, 0))
            .unwrap()
            .as_dict()
            .unwrap()
            .has_type(b"Catalog")
    );
    let last = data.len() - 1;
    data[last] ^= 0xFF;
    let damaged = stream(&data);
    assert!(read_and_check(&damaged).unwrap_err().contains("damaged"));
}

#[test]
fn a_prev_loop_and_a_missing_startxref_are_refused() {
    let body = "%PDF-1.4\n";
    let xref_at = body.len();
    let looped = format!(
        "{body}xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 /Prev {xref_at} >>\nstartxref\n{xref_at}\n%%EOF\n"
    );
    assert!(
        read_and_check(looped.as_bytes())
            .unwrap_err()
            .contains("loops")
    );
    assert!(
        read_and_check(b"%PDF-1.4\n")
            .unwrap_err()
            .contains("startxref")
    );
}

/// An update written on `file` reads back: the new object, the replaced
/// one, and the untouched ones, in a section of the file's own kind.
fn update_reads_back(file: &[u8], kind: XrefKind) {
    let read = PdfFile::read(file).unwrap();
    assert_eq!(read.kind, kind);
    let mut revision = Revision::new(&read).unwrap();
    let added = revision
        .add(Object::Stream(lopdf::Stream::new(
            Dictionary::new(),
            b"data".to_vec(),
        )))
        .unwrap();
    let mut catalog = read.get((1, 0)).unwrap().as_dict().unwrap().clone();
    catalog.set("Added", Object::Reference(added));
    revision.set((1, 0), Object::Dictionary(catalog));
    let update = revision.write().unwrap();
    let mut whole = file.to_vec();
    whole.extend_from_slice(&update);
    let again = PdfFile::read(&whole).unwrap();
    assert_eq!(again.check(), Ok(()));
    assert_eq!(again.kind, kind);
    assert_eq!(
        again.trailer().get(b"Root").unwrap(),
        &Object::Reference((1, 0))
    );
    let catalog = again.get((1, 0)).unwrap();
    let reference = catalog.as_dict().unwrap().get(b"Added").unwrap().clone();
    let Object::Stream(stream) = again.resolve(&reference).unwrap() else {
        panic!("not a stream");
    };
    assert_eq!(stream.content, b"data");
    assert_eq!(
        again.trailer().get(b"Prev").unwrap(),
        &Object::Integer(read.last_section as i64)
    );
}

#[test]
fn updates_read_back_on_tables_and_streams() {
    update_reads_back(&pdf(TABLE, "<< /Size 2 /Root 1 0 R >>"), XrefKind::Table);
    let body = "%PDF-1.5\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
    let stream_at = body.len();
    let rows = [[0u8, 0, 0, 0xFF], [1, 0, 9, 0], [1, 0, stream_at as u8, 0]].concat();
    let mut file = body.as_bytes().to_vec();
    file.extend_from_slice(
        format!(
            "2 0 obj\n<< /Type /XRef /Size 3 /W [1 2 1] /Root 1 0 R /Length {} >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    file.extend_from_slice(&rows);
    file.extend_from_slice(
        format!("\nendstream\nendobj\nstartxref\n{stream_at}\n%%EOF").as_bytes(),
    );
    update_reads_back(&file, XrefKind::Stream);
}

#[test]
fn a_hybrid_file_finds_objects_through_its_cross_reference_stream() {
    // Object 1 (the catalog) in the table; object 2 left free there and
    // placed by the /XRefStm stream (object 3), as hybrid writers do.
    let mut file = b"%PDF-1.5\n".to_vec();
    let catalog_at = file.len();
    file.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Extra 2 0 R >>\nendobj\n");
    let hidden_at = file.len();
    file.extend_from_slice(b"2 0 obj\n(hidden)\nendobj\n");
    let stream_at = file.len();
    let rows = [[1u8, 0, hidden_at as u8, 0], [1, 0, stream_at as u8, 0]].concat();
    file.extend_from_slice(
        format!(
            "3 0 obj\n<< /Type /XRef /Size 4 /W [1 2 1] /Index [2 2] /Length {} >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    file.extend_from_slice(&rows);
    file.extend_from_slice(b"\nendstream\nendobj\n");
    let table_at = file.len();
    file.extend_from_slice(
        format!(
            "xref\n0 3\n0000000000 65535 f \n{catalog_at:010} 00000 n \n0000000000 00000 f \n\
             trailer\n<< /Size 4 /Root 1 0 R /XRefStm {stream_at} >>\nstartxref\n{table_at}\n%%EOF\n"
        )
        .as_bytes(),
    );
    let read = PdfFile::read(&file).unwrap();
    assert_eq!(read.check(), Ok(()));
    assert_eq!(read.kind, XrefKind::Table);
    assert_eq!(
        read.get((2, 0)).unwrap(),
        Object::String(b"hidden".to_vec(), StringFormat::Literal)
    );
    update_reads_back(&file, XrefKind::Table);
}

#[test]
fn object_numbers_stop_at_the_limit() {
    let file = pdf(
        TABLE,
        &format!("<< /Size {MAX_OBJECT_NUMBER} /Root 1 0 R >>"),
    );
    let read = PdfFile::read(&file).unwrap();
    let mut revision = Revision::new(&read).unwrap();
    assert!(revision.add(Object::Null).is_err());
}

/// A page as a producer wrote it: reals beyond f32's digits, a literal
/// string with escapes, a name with a # escape, a nested dictionary.
const PRODUCED_PAGE: &str = "<< /Type /Page /MediaBox [0 0 595.275591 841.889764] \
    /Note (Caf\\351 \\(draft\\)\\n) /Tag /A#20B \
    /Resources << /ProcSet [/PDF] /Scale 0.333333333 >> >>";

/// The rewritten object `number` in the update written after `file`.
fn rewritten(update: &[u8], number: u32) -> String {
    let text = String::from_utf8_lossy(update).into_owned();
    let start = text.find(&format!("{number} 0 obj")).unwrap();
    let end = start + text[start..].find("endobj").unwrap();
    text[start..end].to_owned()
}

fn assert_kept_as_written(object: &str) {
    for raw in [
        "595.275591",
        "841.889764",
        "(Caf\\351 \\(draft\\)\\n)",
        "/A#20B",
        "<< /ProcSet [/PDF] /Scale 0.333333333 >>",
    ] {
        assert!(object.contains(raw), "{raw} is not kept in {object}");
    }
    assert!(object.contains("/Annots"), "{object}");
}

#[test]
fn a_rewritten_object_keeps_every_value_it_does_not_change_as_written() {
    let body = format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n\
         2 0 obj\n{PRODUCED_PAGE}\nendobj\n"
    );
    let page_at = body.find("2 0 obj").unwrap();
    let table_at = body.len();
    let file = format!(
        "{body}xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n{page_at:010} 00000 n \n\
         trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n{table_at}\n%%EOF\n"
    )
    .into_bytes();
    let read = PdfFile::read(&file).unwrap();
    assert_eq!(read.check(), Ok(()));
    let Object::Dictionary(mut page) = read.get((2, 0)).unwrap() else {
        panic!("the page");
    };
    page.set("Annots", Object::Array(vec![Object::Reference((3, 0))]));
    let mut revision = Revision::new(&read).unwrap();
    revision.set((2, 0), Object::Dictionary(page));
    let update = revision.write().unwrap();
    assert_kept_as_written(&rewritten(&update, 2));
}

#[test]
fn an_object_from_an_object_stream_is_rewritten_as_written_too() {
    let header = "2 0 ";
    let content = format!("{header}{PRODUCED_PAGE}");
    let mut file = b"%PDF-1.7\n".to_vec();
    let catalog_at = file.len();
    file.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    let container_at = file.len();
    file.extend_from_slice(
        format!(
            "3 0 obj\n<< /Type /ObjStm /N 1 /First {} /Length {} >>\nstream\n{content}\nendstream\nendobj\n",
            header.len(),
            content.len()
        )
        .as_bytes(),
    );
    let stream_at = file.len();
    let at = |offset: usize| [1u8, (offset >> 8) as u8, offset as u8, 0];
    let rows = [
        [0u8, 0, 0, 0xFF],
        at(catalog_at),
        [2, 0, 3, 0],
        at(container_at),
        at(stream_at),
    ]
    .concat();
    file.extend_from_slice(
        format!(
            "4 0 obj\n<< /Type /XRef /Size 5 /W [1 2 1] /Root 1 0 R /Length {} >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    file.extend_from_slice(&rows);
    file.extend_from_slice(
        format!("\nendstream\nendobj\nstartxref\n{stream_at}\n%%EOF\n").as_bytes(),
    );
    let read = PdfFile::read(&file).unwrap();
    assert_eq!(read.check(), Ok(()));
    let Object::Dictionary(mut page) = read.get((2, 0)).unwrap() else {
        panic!("the page");
    };
    page.set("Annots", Object::Array(vec![Object::Reference((5, 0))]));
    let mut revision = Revision::new(&read).unwrap();
    revision.set((2, 0), Object::Dictionary(page));
    let update = revision.write().unwrap();
    assert_kept_as_written(&rewritten(&update, 2));
}
