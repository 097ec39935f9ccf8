"""Writes the PAdES test corpus: PDFs from many producers (reportlab,
Ghostscript, qpdf, pyHanko, a hand-written writer, and those of
make_producers.py) that sceau must seal or refuse, and OUT_DIR/manifest.json saying what the service should do with each.
A fresh clone needs no fixture files: everything is generated here, offline.

    python make_corpus.py OUT_DIR [--shared DIR] [--large]

--shared DIR  also copies DIR/*.pdf as shared-<name>, expectations read from
              the file with pyHanko (the name's hint is checked against it).
--large       also writes a file of more than 100,000 objects and a ~30 MB one.

Manifest entries: file, producer, expect ("seal" or "refuse"), refusal
(lowercase words the 422 detail must contain; null when sealed), empty_field
(an existing empty signature field, or null), prior_signatures, note, and
objects (indirect objects, large files only).

Every file is the same on every run except those pyHanko writes (modification
date, /ID, fresh signing key, signing time) and those qpdf encrypts (random
salts)."""

import argparse
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

from asn1crypto import keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.fields import (
    MDPPerm,
    SigFieldSpec,
    SigSeedSubFilter,
    append_signature_field,
    enumerate_sig_fields,
)
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from make_invoice import write_invoice
from make_producers import producers_corpus

# The 422 details of src/seal/pades.rs, lowercased.
UNREADABLE = "cannot be read"
ENCRYPTED = "encrypted"
NOT_PDF = "not a pdf"
NO_CHANGES = "no changes permitted"

# Ghostscript's dates (SOURCE_DATE_EPOCH): 2026-01-01T00:00:00Z.
GS_EPOCH = "1767225600"


def entry(file, producer, note, *, refusal=None, empty_field=None,
          prior_signatures=0, objects=None):
    """One manifest entry: sealed unless a refusal is given."""
    item = {
        "file": file,
        "producer": producer,
        "expect": "refuse" if refusal else "seal",
        "refusal": refusal,
        "empty_field": empty_field,
        "prior_signatures": prior_signatures,
        "note": note,
    }
    if objects is not None:
        item["objects"] = objects
    return item


def png(width: int, height: int) -> bytes:
    """An RGB PNG (gradients and an XOR pattern), built without any imaging
    library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00"
        + bytes(
            value
            for x in range(width)
            for value in (x * 255 // width, y * 255 // height, (x ^ y) & 0xFF)
        )
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def write_report(out: Path) -> None:
    """30 pages of text, shapes and one embedded image, drawn on every page."""
    image = ImageReader(BytesIO(png(128, 96)))
    page = canvas.Canvas(str(out), pagesize=A4, invariant=1)
    page.setTitle("Rapport trimestriel")
    for number in range(1, 31):
        page.setFont("Helvetica-Bold", 16)
        page.drawString(72, 780, f"Rapport trimestriel - page {number}/30")
        page.setFillColor(colors.Color(number / 30, 0.4, 1 - number / 30))
        page.rect(72, 600, 200, 120, stroke=1, fill=1)
        page.circle(420, 660, 20 + 2 * number, stroke=1, fill=0)
        page.setFillColor(colors.black)
        for line in range(10):
            page.line(72, 560 - 12 * line, 72 + 45 * (line + 1), 560 - 12 * line)
        page.drawImage(image, 72, 230, width=256, height=192)
        page.setFont("Helvetica", 10)
        page.drawString(72, 205, f"Figure {number}: indicateurs du trimestre.")
        page.showPage()
    page.save()


def write_minutes(out: Path) -> None:
    """Two pages of PostScript text through Ghostscript's pdfwrite. The dates
    come from SOURCE_DATE_EPOCH and the /ID from the dates and the output name,
    so running in a scratch directory with relative names makes it stable."""
    pages = [
        ["Minutes of the board meeting", "Present: A. Martin, B. Durand",
         "1. The 2025 accounts are approved."],
        ["2. The seal policy is renewed for one year.",
         "The meeting closes at 18:00."],
    ]
    lines = ["%!PS-Adobe-3.0", "%%Title: Minutes", f"%%Pages: {len(pages)}",
             "%%EndComments", "/Helvetica findfont 12 scalefont setfont"]
    for number, texts in enumerate(pages, 1):
        lines.append(f"%%Page: {number} {number}")
        for row, text in enumerate(texts):
            lines.append(f"72 {770 - 18 * row} moveto ({text}) show")
        lines.append("showpage")
    lines.append("%%EOF")
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "minutes.ps").write_text("\n".join(lines) + "\n")
        subprocess.run(
            ["gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite",
             f"-sOutputFile={out.name}", "minutes.ps"],
            cwd=scratch, env={**os.environ, "SOURCE_DATE_EPOCH": GS_EPOCH},
            check=True,
        )
        shutil.move(Path(scratch, out.name), out)


def qpdf(*args) -> None:
    subprocess.run(["qpdf", *map(str, args)], check=True)


def throwaway_signer() -> signers.SimpleSigner:
    """A signer with a fresh self-signed RSA-2048 certificate: another tool's
    signature, which sceau's trust store does not know."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other Tool (corpus)")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    private = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return signers.SimpleSigner(
        signing_cert=cert,
        signing_key=private,
        cert_registry=SimpleCertificateStore.from_certs([cert]),
    )


def write_signed(source: Path, out: Path, signer, permissions=None) -> None:
    """`source` signed (PAdES) in a new field OtherTool; certified with the
    given DocMDP permissions when they are given."""
    meta = signers.PdfSignatureMetadata(
        field_name="OtherTool",
        subfilter=SigSeedSubFilter.PADES,
        certify=permissions is not None,
        docmdp_permissions=permissions or MDPPerm.FILL_FORMS,
    )
    with source.open("rb") as handle, out.open("wb") as output:
        signers.sign_pdf(IncrementalPdfFileWriter(handle), meta, signer=signer, output=output)


def write_precise(out: Path) -> None:
    """One page as a producer that writes reals to six decimals and strings
    with escapes does: values a rewrite of the page must keep as written, or
    a validator sees an earlier signature's page changed."""
    content = b"BT /F1 12 Tf 72 770 Td (Precise) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.275591 841.889764] "
        b"/CropBox [0.000001 0 595.275591 841.889764] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> "
        b"/PieceInfo << /Corpus << /Note (Caf\\351 \\(draft\\)) "
        b"/LastModified (D:20260101000000Z) >> >> /LastModified (D:20260101000000Z) >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    data = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(data))
        data += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    table = len(data)
    data += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        data += b"%010d 00000 n \n" % offset
    data += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, table)
    out.write_bytes(bytes(data))


def write_signed_with_dss(source: Path, out: Path, signer) -> None:
    """`source` signed, then a DSS update holding the signer's certificate,
    as validation-data tools append one."""
    write_signed(source, out, signer)
    with out.open("rb") as handle:
        reader = PdfFileReader(handle)
        contents = reader.embedded_signatures[0].pkcs7_content
    with out.open("rb+") as stream:
        DocumentSecurityStore.add_dss(
            stream, contents, certs=[signer.signing_cert], force_write=True
        )


def write_empty_field(source: Path, out: Path, name: str) -> None:
    """`source` with an empty signature field `name` on its first page."""
    with source.open("rb") as handle, out.open("wb") as output:
        writer = IncrementalPdfFileWriter(handle)
        append_signature_field(writer, SigFieldSpec(name, box=(360, 60, 540, 120), on_page=0))
        writer.write(output)


def broken_xref(pdf: bytes) -> bytes:
    """`pdf` (a classic xref table) with every xref entry 7 bytes off and the
    startxref offset 37 bytes early, same digit counts."""
    head, tail = pdf.rsplit(b"startxref", 1)
    offset = tail.split()[0]
    wrong = str(int(offset) - 37).encode()
    assert len(wrong) == len(offset)
    head = re.sub(
        rb"(?m)^(\d{10}) (\d{5}) n",
        lambda m: b"%010d %s n" % (int(m[1]) + 7, m[2]),
        head,
    )
    return head + b"startxref" + tail.replace(offset, wrong, 1)


def prev_loop(pdf: bytes) -> bytes:
    """`pdf` with an update whose trailer's /Prev names its own section."""
    root = re.search(rb"/Root (\d+ \d+ R)", pdf)[1]
    size = re.search(rb"/Size (\d+)", pdf)[1]
    at = len(pdf)
    return pdf + (b"xref\n0 1\n0000000000 65535 f\r\ntrailer\n<< /Size %s /Root %s /Prev %d >>\n"
                  b"startxref\n%d\n%%%%EOF\n" % (size, root, at, at))


def startxref_into_object(pdf: bytes) -> bytes:
    """`pdf` whose startxref points into the middle of its first object."""
    head, tail = pdf.rsplit(b"startxref", 1)
    offset = tail.split()[0]
    inside = b"%d" % (pdf.index(b" 0 obj") + 3)
    return head + b"startxref" + tail.replace(offset, inside, 1)


def default_corpus(out: Path) -> list:
    """Files 1-21 of the corpus, with their manifest entries."""
    invoice = out / "invoice-reportlab.pdf"
    write_invoice(str(invoice))
    write_minutes(out / "minutes-ghostscript.pdf")
    qpdf("--deterministic-id", "--object-streams=generate", invoice,
         out / "invoice-objstreams-qpdf.pdf")
    qpdf("--deterministic-id", "--linearize", invoice, out / "invoice-linearized-qpdf.pdf")
    write_report(out / "report-multipage-reportlab.pdf")
    write_empty_field(invoice, out / "invoice-empty-sigfield.pdf", "SealHere")
    signer = throwaway_signer()
    write_signed(invoice, out / "invoice-signed-pyhanko.pdf", signer)
    write_signed(invoice, out / "invoice-certified-p2.pdf", signer, MDPPerm.FILL_FORMS)
    write_signed(invoice, out / "invoice-certified-p1.pdf", signer, MDPPerm.NO_CHANGES)
    write_signed(invoice, out / "invoice-certified-p3.pdf", signer, MDPPerm.ANNOTATE)
    with_field = out / "invoice-with-field.pdf"
    write_empty_field(invoice, with_field, "SealHere")
    write_signed(with_field, out / "invoice-certified-p2-field.pdf", signer, MDPPerm.FILL_FORMS)
    write_signed(with_field, out / "invoice-certified-p3-field.pdf", signer, MDPPerm.ANNOTATE)
    with_field.unlink()
    precise = out / "precise-reals.pdf"
    write_precise(precise)
    write_signed(precise, out / "precise-signed-pyhanko.pdf", signer)
    precise.unlink()
    write_signed(out / "invoice-objstreams-qpdf.pdf", out / "objstreams-signed-pyhanko.pdf",
                 signer)
    write_signed_with_dss(invoice, out / "invoice-signed-dss-pyhanko.pdf", signer)
    qpdf("--encrypt", "user", "owner", "256", "--", invoice, out / "invoice-encrypted-qpdf.pdf")
    qpdf("--encrypt", "", "owner", "256", "--", invoice,
         out / "invoice-encrypted-owner-only.pdf")
    data = invoice.read_bytes()
    (out / "invoice-truncated.pdf").write_bytes(data[: len(data) // 2])
    (out / "invoice-broken-xref.pdf").write_bytes(broken_xref(data))
    (out / "invoice-prev-loop.pdf").write_bytes(prev_loop(data))
    (out / "invoice-startxref-into-object.pdf").write_bytes(startxref_into_object(data))
    (out / "not-a-pdf.pdf").write_bytes(png(16, 16))
    (out / "empty.pdf").write_bytes(b"")
    return [
        entry("invoice-reportlab.pdf", "reportlab", "one page, classic xref table"),
        entry("minutes-ghostscript.pdf", "ghostscript",
              "two pages of PostScript text through pdfwrite"),
        entry("invoice-objstreams-qpdf.pdf", "qpdf",
              "the invoice with a cross-reference stream and object streams"),
        entry("invoice-linearized-qpdf.pdf", "qpdf", "the invoice linearized"),
        entry("report-multipage-reportlab.pdf", "reportlab",
              "30 pages with shapes and an embedded PNG image"),
        entry("invoice-empty-sigfield.pdf", "pyhanko",
              "the invoice with an empty signature field added in an incremental update",
              empty_field="SealHere"),
        entry("invoice-signed-pyhanko.pdf", "pyhanko",
              "signed by another tool (self-signed, untrusted): that signature must stay intact",
              prior_signatures=1),
        entry("invoice-certified-p2.pdf", "pyhanko",
              "certified with DocMDP P=2: form filling and signing allowed",
              prior_signatures=1),
        entry("precise-signed-pyhanko.pdf", "pyhanko",
              "a page with six-decimal reals and escaped strings, signed by another "
              "tool: our rewrite of the page must keep them as written",
              prior_signatures=1),
        entry("objstreams-signed-pyhanko.pdf", "pyhanko",
              "the object-stream invoice signed by another tool: its page lives in an "
              "object stream, so our rewrite of it starts from decoded bytes",
              prior_signatures=1),
        entry("invoice-signed-dss-pyhanko.pdf", "pyhanko",
              "signed by another tool, then a DSS update: our revision follows it",
              prior_signatures=1),
        entry("invoice-certified-p3.pdf", "pyhanko",
              "certified with DocMDP P=3: annotations, form filling and signing allowed",
              prior_signatures=1),
        entry("invoice-certified-p2-field.pdf", "pyhanko",
              "an empty signature field, then certified with DocMDP P=2",
              empty_field="SealHere", prior_signatures=1),
        entry("invoice-certified-p3-field.pdf", "pyhanko",
              "an empty signature field, then certified with DocMDP P=3",
              empty_field="SealHere", prior_signatures=1),
        entry("invoice-certified-p1.pdf", "pyhanko",
              "certified with DocMDP P=1: no change allowed",
              refusal=NO_CHANGES, prior_signatures=1),
        entry("invoice-encrypted-qpdf.pdf", "qpdf", "AES-256 with a user password",
              refusal=ENCRYPTED),
        entry("invoice-encrypted-owner-only.pdf", "qpdf",
              "AES-256 with an empty user password: opens without one",
              refusal=ENCRYPTED),
        entry("invoice-truncated.pdf", "mutated", "the invoice's first half",
              refusal=UNREADABLE),
        entry("invoice-broken-xref.pdf", "mutated",
              "startxref and every xref entry point at wrong offsets; "
              "qpdf and lenient parsers can rebuild the table by scanning",
              refusal=UNREADABLE),
        entry("invoice-prev-loop.pdf", "mutated",
              "an update whose trailer's /Prev names its own cross-reference section",
              refusal=UNREADABLE),
        entry("invoice-startxref-into-object.pdf", "mutated",
              "startxref points into the middle of the first object", refusal=UNREADABLE),
        entry("not-a-pdf.pdf", "png", "a PNG image named .pdf", refusal=NOT_PDF),
        entry("empty.pdf", "empty", "zero bytes", refusal=NOT_PDF),
    ]


def name_hint(name: str):
    """The refusal a shared fixture's name announces, None for a seal."""
    if "broken" in name or "truncated" in name:
        return UNREADABLE
    if "encrypted" in name:
        return ENCRYPTED
    return None


def qpdf_check(path: Path) -> str:
    """qpdf --check's verdict, with its last message when it fails."""
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    verdict = {0: "passes", 3: "passes with warnings"}.get(result.returncode)
    if verdict:
        return verdict
    return "fails: " + result.stderr.strip().splitlines()[-1].rsplit(": ", 1)[-1]


def shared_corpus(source: Path, out: Path) -> list:
    """DIR/*.pdf copied as shared-<name>; what the service should do is read
    from the file with pyHanko, and a name that says otherwise is noted."""
    entries = []
    for pdf in sorted(source.glob("*.pdf")):
        name = f"shared-{pdf.name}"
        shutil.copyfile(pdf, out / name)
        refusal, empty_field, signatures = None, None, 0
        with pdf.open("rb") as handle:
            try:
                reader = PdfFileReader(handle)
                if reader.encrypted:
                    refusal = ENCRYPTED
                    found = "pyHanko: encrypted"
                else:
                    signatures = len(reader.embedded_signatures)
                    empty_field = next(
                        (field for field, _, _ in enumerate_sig_fields(reader, filled_status=False)),
                        None,
                    )
                    found = f"pyHanko reads it: {signatures} signature(s)"
            except Exception as error:
                refusal = UNREADABLE
                found = f"pyHanko: {error}"
        note = f"shared fixture; {found}; qpdf --check {qpdf_check(pdf)}"
        hint = name_hint(pdf.name)
        if hint != refusal:
            expected = f"a refusal ({hint})" if hint else "a seal"
            note += f"; the name suggests {expected}, the file says otherwise"
            print(f"make_corpus: {pdf.name}: {note}", file=sys.stderr)
        entries.append(entry(name, "shared", note, refusal=refusal,
                             empty_field=empty_field, prior_signatures=signatures))
    return entries


class PdfWriter:
    """A minimal streaming PDF writer: objects go to the file as they come,
    their offsets kept for the classic cross-reference table written last."""

    def __init__(self, path: Path):
        self.file = path.open("wb", buffering=1 << 20)
        self.position = 0
        self.offsets = {}
        self.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.position += len(data)

    def object(self, number: int, body: str) -> None:
        self.offsets[number] = self.position
        self.write(b"%d 0 obj\n%s\nendobj\n" % (number, body.encode()))

    def stream(self, number: int, entries: str, data: bytes) -> None:
        self.offsets[number] = self.position
        self.write(b"%d 0 obj\n<< %s /Length %d >>\nstream\n" % (number, entries.encode(), len(data)))
        self.write(data)
        self.write(b"\nendstream\nendobj\n")

    def close(self, root: int, name: str) -> int:
        """Writes the xref table and trailer; the number of objects."""
        size = len(self.offsets) + 1
        assert sorted(self.offsets) == list(range(1, size)), "object numbers must be 1..n"
        start = self.position
        self.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
        self.write(b"".join(b"%010d 00000 n \n" % self.offsets[n] for n in range(1, size)))
        ident = zlib.crc32(name.encode()).to_bytes(4, "big").hex() * 4
        self.write(
            b"trailer\n<< /Size %d /Root %d 0 R /ID [<%s> <%s>] >>\nstartxref\n%d\n%%%%EOF\n"
            % (size, root, ident.encode(), ident.encode(), start)
        )
        self.file.close()
        return size - 1


def write_many_objects(out: Path) -> int:
    """34,000 pages, each with its own content stream and a link annotation to
    the next page, under a two-level page tree: 102,343 objects."""
    pages, fan_out = 34_000, 100
    nodes = -(-pages // fan_out)
    catalog, root, font, first_node = 1, 2, 3, 4
    first_page = first_node + nodes

    def page_ref(index: int) -> int:
        return first_page + 3 * index

    writer = PdfWriter(out)
    writer.object(catalog, f"<< /Type /Catalog /Pages {root} 0 R >>")
    kids = " ".join(f"{first_node + n} 0 R" for n in range(nodes))
    writer.object(root, f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")
    writer.object(font, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for n in range(nodes):
        members = range(n * fan_out, min(pages, (n + 1) * fan_out))
        kids = " ".join(f"{page_ref(i)} 0 R" for i in members)
        writer.object(first_node + n,
                      f"<< /Type /Pages /Parent {root} 0 R /Kids [{kids}] /Count {len(members)} >>")
    for i in range(pages):
        page = page_ref(i)
        writer.object(
            page,
            f"<< /Type /Page /Parent {first_node + i // fan_out} 0 R /MediaBox [0 0 595 842]"
            f" /Resources << /Font << /F1 {font} 0 R >> >> /Contents {page + 1} 0 R"
            f" /Annots [{page + 2} 0 R] >>",
        )
        text = (f"BT /F1 24 Tf 72 770 Td (Page {i + 1} of {pages}) Tj ET\n"
                f"BT /F1 12 Tf 72 706 Td (Next page) Tj ET")
        writer.stream(page + 1, "", text.encode())
        writer.object(
            page + 2,
            "<< /Type /Annot /Subtype /Link /Rect [72 700 160 720] /Border [0 0 0]"
            f" /Dest [{page_ref((i + 1) % pages)} 0 R /Fit] >>",
        )
    return writer.close(catalog, out.name)


def write_large_pages(out: Path) -> int:
    """32 pages, each showing its own 640x512 RGB image of seeded random bytes,
    uncompressed: about 31 MB."""
    pages, width, height = 32, 640, 512
    catalog, root, first_page = 1, 2, 3
    writer = PdfWriter(out)
    writer.object(catalog, f"<< /Type /Catalog /Pages {root} 0 R >>")
    kids = " ".join(f"{first_page + 3 * i} 0 R" for i in range(pages))
    writer.object(root, f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>")
    for i in range(pages):
        page = first_page + 3 * i
        writer.object(
            page,
            f"<< /Type /Page /Parent {root} 0 R /MediaBox [0 0 595 842]"
            f" /Resources << /XObject << /Im {page + 2} 0 R >> >> /Contents {page + 1} 0 R >>",
        )
        writer.stream(page + 1, "", b"q 450 0 0 360 72 400 cm /Im Do Q")
        writer.stream(
            page + 2,
            f"/Type /XObject /Subtype /Image /Width {width} /Height {height}"
            " /ColorSpace /DeviceRGB /BitsPerComponent 8",
            random.Random(i).randbytes(width * height * 3),
        )
    return writer.close(catalog, out.name)


def large_corpus(out: Path) -> list:
    objects = write_many_objects(out / "large-100k-objects.pdf")
    image_objects = write_large_pages(out / "large-pages.pdf")
    return [
        entry("large-100k-objects.pdf", "handwritten",
              "34,000 pages, each with a content stream and a link annotation",
              objects=objects),
        entry("large-pages.pdf", "handwritten",
              "32 pages of uncompressed 640x512 RGB noise, about 31 MB",
              objects=image_objects),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Writes the PAdES test corpus and its manifest.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--shared", type=Path, metavar="DIR", help="a directory of fixture PDFs to add")
    parser.add_argument("--large", action="store_true", help="add the large files")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = default_corpus(args.out_dir)
    manifest += producers_corpus(args.out_dir, args.out_dir / "invoice-reportlab.pdf",
                                 png(64, 48), entry)
    if args.shared:
        manifest += shared_corpus(args.shared, args.out_dir)
    if args.large:
        manifest += large_corpus(args.out_dir)
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
