"""The seal corpus's files from independent producers, each writing its own
PDF: cairo (poppler's pdftocairo), Chromium's print to PDF, MuPDF (mutool),
fpdf2, pypdf, img2pdf (its own engine), Typst, and pdf-lib, PDFKit and jsPDF
(tests/pdf-producers/make.mjs). Also a hybrid-reference file (a classic table
whose trailer carries /XRefStm, as Word writes), a Factur-X invoice (PDF/A-3
metadata with its XML attached), 2,000 pages and 1,000 links.

A file that passes `qpdf --check` without a warning and `pdfinfo` without a
word on stderr must be sealable (benign quirks are not damage); every file
here is expected sealed, and a reader's complaint is noted in its entry.
"""

import shutil
import subprocess
import zlib
from datetime import datetime, timezone
from pathlib import Path

FIXED = datetime(2026, 1, 1, tzinfo=timezone.utc)
HERE = Path(__file__).resolve().parent
NODE_PRODUCERS = HERE.parent / "pdf-producers"


def run(*args, **kwargs) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, **kwargs)


def complaints(path: Path) -> str:
    """What mainstream readers say about a producer's file: qpdf --check's
    warnings and pdfinfo's stderr; empty for a clean file."""
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    said = []
    if check.returncode != 0 or "WARNING" in check.stdout + check.stderr:
        said.append(f"qpdf --check {check.returncode}: {check.stdout}{check.stderr}".strip())
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True)
    if info.returncode != 0 or info.stderr:
        said.append(f"pdfinfo: {info.stderr}".strip())
    return "; ".join(said)


def write_cairo(invoice: Path, out: Path) -> None:
    run("pdftocairo", "-pdf", invoice, out)


def write_chromium(work: Path, out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "chromium not found: make test installs it"
    page = work / "page.html"
    page.write_text(
        "<!doctype html><html lang='fr'><meta charset='utf-8'><title>Facture</title>"
        "<body><h1>Exemple SA</h1><p>Facture 2026-0042 : 1 200,00 EUR.</p>"
        "<p><a href='https://example.eu/conditions'>Conditions</a></p></body></html>",
        encoding="utf-8")
    profile = work / "chromium-profile"
    run(browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={profile}", "--no-pdf-header-footer",
        f"--print-to-pdf={out}", page.as_uri(), timeout=120)


def write_mupdf(work: Path, out: Path) -> None:
    contents = work / "mutool-page.txt"
    contents.write_text(
        "%%MediaBox 0 0 595 842\n%%Font Helv Helvetica\n"
        "BT /Helv 12 Tf 72 770 Td (Exemple SA - Facture 2026-0042 \\(MuPDF\\)) Tj ET\n"
        "0 0 1 RG 72 700 200 40 re S\n")
    run("mutool", "create", "-o", out, contents)


def write_fpdf2(out: Path, pages: int = 1) -> None:
    from fpdf import FPDF
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED)
    pdf.set_font("helvetica", size=12)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(text=f"Exemple SA - Facture 2026-0042 (fpdf2), page {number}")
        if number == 1:
            pdf.ln(10)
            pdf.cell(text="Conditions", link="https://example.eu/conditions")
    pdf.output(str(out))


def write_pypdf(invoice: Path, out: Path) -> None:
    from pypdf import PdfWriter
    writer = PdfWriter(clone_from=str(invoice))
    writer.add_metadata({"/Producer": "pypdf", "/Title": "Facture 2026-0042 (pypdf)"})
    with open(out, "wb") as stream:
        writer.write(stream)


def write_img2pdf(png: bytes, out: Path) -> None:
    import img2pdf
    out.write_bytes(img2pdf.convert(png, engine=img2pdf.Engine.internal))


def write_typst(work: Path, out: Path) -> None:
    import typst
    source = work / "invoice.typ"
    source.write_text(
        '#set document(title: "Facture 2026-0042", date: datetime(year: 2026, month: 1, day: 1))\n'
        "= Exemple SA\nFacture 2026-0042 : 1 200,00 EUR.\n"
        '#link("https://example.eu/conditions")[Conditions]\n', encoding="utf-8")
    typst.compile(str(source), output=str(out))


def write_node(out_dir: Path) -> None:
    node = shutil.which("node")
    assert node and (NODE_PRODUCERS / "node_modules").is_dir(), (
        "node and tests/pdf-producers/node_modules: make test installs them")
    run(node, NODE_PRODUCERS / "make.mjs", out_dir)


def write_hybrid(out: Path) -> None:
    """A classic table that lists every object but one, and a trailer whose
    /XRefStm names a cross-reference stream placing that one (a font) in an
    object stream: Word's "Save as PDF" layout, by hand."""
    parts, offsets = [b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"], {}

    def add(number: int, body: bytes) -> None:
        offsets[number] = sum(len(p) for p in parts)
        parts.append(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    content = b"BT /F1 12 Tf 72 770 Td (Exemple SA - Facture hybride) Tj ET"
    add(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    add(2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    add(3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.276 841.89] "
           b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>")
    add(4, b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    header = b"5 0 "
    packed = zlib.compress(header + font)
    add(6, b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
           % (len(header), len(packed)) + packed + b"\nendstream")
    rows = bytes([2]) + (6).to_bytes(4, "big") + (0).to_bytes(2, "big")
    add(7, b"<< /Type /XRef /Size 8 /W [1 4 2] /Index [5 1] /Length %d >>\nstream\n"
           % len(rows) + rows + b"\nendstream")
    table_at = sum(len(p) for p in parts)
    table = [b"xref\n0 8\n", b"0000000005 65535 f\r\n"]
    for number in range(1, 8):
        if number == 5:
            table.append(b"0000000000 00001 f\r\n")
        else:
            table.append(b"%010d 00000 n\r\n" % offsets[number])
    parts.extend(table)
    parts.append(b"trailer\n<< /Size 8 /Root 1 0 R /XRefStm %d >>\nstartxref\n%d\n%%%%EOF\n"
                 % (offsets[7], table_at))
    out.write_bytes(b"".join(parts))


FACTURX_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
 <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>
  <ram:ID>urn:factur-x.eu:1p0:minimum</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
 </rsm:ExchangedDocumentContext>
 <rsm:ExchangedDocument><ram:ID>2026-0042</ram:ID><ram:TypeCode>380</ram:TypeCode>
  <ram:IssueDateTime><udt:DateTimeString format="102">20260101</udt:DateTimeString></ram:IssueDateTime>
 </rsm:ExchangedDocument>
</rsm:CrossIndustryInvoice>
"""

FACTURX_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
  <pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance></rdf:Description>
 <rdf:Description rdf:about="" xmlns:fx="urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#">
  <fx:DocumentType>INVOICE</fx:DocumentType><fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>
  <fx:Version>1.0</fx:Version><fx:ConformanceLevel>MINIMUM</fx:ConformanceLevel></rdf:Description>
</rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


def write_facturx(invoice: Path, out: Path) -> None:
    """The invoice with its Factur-X XML attached (/AF, /AFRelationship
    /Data) and PDF/A-3 and Factur-X metadata, written by pypdf."""
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, NameObject, StreamObject
    writer = PdfWriter(clone_from=str(invoice))
    writer.add_attachment("factur-x.xml", FACTURX_XML)
    names = writer.root_object["/Names"]["/EmbeddedFiles"]["/Names"]
    spec = names[1].get_object()
    spec[NameObject("/AFRelationship")] = NameObject("/Data")
    writer.root_object[NameObject("/AF")] = ArrayObject([names[1]])
    metadata = StreamObject()
    metadata.set_data(FACTURX_XMP.encode("utf-8"))
    metadata.update({NameObject("/Type"): NameObject("/Metadata"),
                     NameObject("/Subtype"): NameObject("/XML")})
    writer.root_object[NameObject("/Metadata")] = writer._add_object(metadata)
    with open(out, "wb") as stream:
        writer.write(stream)


def write_links(out: Path, links: int = 1000) -> None:
    """`links` link annotations over ten pages, written by reportlab."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas
    page = canvas.Canvas(str(out), pagesize=A4, invariant=1)
    per_page = links // 10
    for number in range(10):
        for i in range(per_page):
            x, y = 40 + (i % 10) * 52, 780 - (i // 10) * 70
            page.drawString(x, y, f"L{number * per_page + i}")
            page.linkURL(f"https://example.eu/{number * per_page + i}",
                         (x, y - 2, x + 40, y + 10), relative=0)
        page.showPage()
    page.save()


def producers_corpus(out: Path, invoice: Path, png: bytes, entry) -> list:
    """Writes the producers' files into `out`; returns their manifest entries
    (`entry` is make_corpus.entry)."""
    work = out / "producers-work"
    work.mkdir(exist_ok=True)
    made = []

    def keep(file: str, producer: str, note: str) -> None:
        # A clean file must be sealed; one a reader complains about is
        # sealed too, and the complaint is noted.
        said = complaints(out / file)
        made.append(entry(file, producer, f"{note} (readers say: {said})" if said else note))

    write_cairo(invoice, out / "invoice-cairo.pdf")
    keep("invoice-cairo.pdf", "cairo", "the invoice redrawn by poppler's pdftocairo")
    write_chromium(work, out / "page-chromium.pdf")
    keep("page-chromium.pdf", "chromium", "an HTML page printed to PDF by headless Chromium (Skia)")
    write_mupdf(work, out / "page-mupdf.pdf")
    keep("page-mupdf.pdf", "mupdf", "a page written by mutool create")
    write_fpdf2(out / "page-fpdf2.pdf")
    keep("page-fpdf2.pdf", "fpdf2", "a page with a link, by fpdf2")
    write_pypdf(invoice, out / "invoice-pypdf.pdf")
    keep("invoice-pypdf.pdf", "pypdf", "the invoice rewritten by pypdf's serialiser")
    write_img2pdf(png, out / "image-img2pdf.pdf")
    keep("image-img2pdf.pdf", "img2pdf", "a PNG image wrapped by img2pdf's own engine")
    write_typst(work, out / "page-typst.pdf")
    keep("page-typst.pdf", "typst", "a page typeset by Typst")
    write_node(out)
    for file, producer, note in [
        ("pdflib.pdf", "pdf-lib", "a page by pdf-lib, with object streams"),
        ("pdfkit.pdf", "pdfkit", "two pages with a link, by PDFKit"),
        ("jspdf.pdf", "jspdf", "a page by jsPDF"),
    ]:
        keep(file, producer, note)
    write_hybrid(out / "hybrid-reference.pdf")
    keep("hybrid-reference.pdf", "hybrid",
         "a classic table plus /XRefStm placing the font in an object stream (Word's layout)")
    write_facturx(invoice, out / "invoice-facturx.pdf")
    keep("invoice-facturx.pdf", "pypdf",
         "a Factur-X invoice: PDF/A-3 and Factur-X metadata, its XML attached (/AF)")
    write_fpdf2(out / "pages-2000-fpdf2.pdf", pages=2000)
    keep("pages-2000-fpdf2.pdf", "fpdf2", "2,000 pages")
    write_links(out / "links-1000-reportlab.pdf")
    keep("links-1000-reportlab.pdf", "reportlab", "1,000 link annotations over ten pages")
    shutil.rmtree(work)
    return made
