// Writes one small PDF with each JavaScript producer of the seal corpus:
// node make.mjs OUT_DIR  ->  OUT_DIR/pdflib.pdf, pdfkit.pdf, jspdf.pdf
import { writeFileSync, createWriteStream } from "node:fs";
import { join } from "node:path";
import { PDFDocument, StandardFonts, rgb } from "pdf-lib";
import PDFKit from "pdfkit";
import { jsPDF } from "jspdf";

const out = process.argv[2];
const fixed = new Date("2026-01-01T00:00:00Z");

// pdf-lib: a page, text, a rectangle; cross-reference stream and object streams.
const lib = await PDFDocument.create();
lib.setCreationDate(fixed);
lib.setModificationDate(fixed);
const page = lib.addPage([595.28, 841.89]);
const font = await lib.embedFont(StandardFonts.Helvetica);
page.drawText("Exemple SA - Facture 2026-0042 (pdf-lib)", { x: 72, y: 770, size: 12, font });
page.drawRectangle({ x: 72, y: 700, width: 200, height: 40, color: rgb(0.9, 0.9, 1) });
writeFileSync(join(out, "pdflib.pdf"), await lib.save({ useObjectStreams: true }));

// PDFKit: two pages of text, a link and a vector shape.
await new Promise((resolve, reject) => {
  const kit = new PDFKit({ size: "A4", info: { CreationDate: fixed, ModDate: fixed } });
  const stream = createWriteStream(join(out, "pdfkit.pdf"));
  stream.on("finish", resolve);
  stream.on("error", reject);
  kit.pipe(stream);
  kit.fontSize(12).text("Exemple SA - Facture 2026-0042 (PDFKit)", 72, 72);
  kit.text("Conditions", 72, 100, { link: "https://example.eu/conditions", underline: true });
  kit.circle(300, 300, 50).fill("#336699");
  kit.addPage().text("Page 2", 72, 72);
  kit.end();
});

// jsPDF: a page of text and a line.
const js = new jsPDF({ unit: "pt", format: "a4" });
js.setCreationDate(fixed);
js.text("Exemple SA - Facture 2026-0042 (jsPDF)", 72, 72);
js.line(72, 90, 300, 90);
writeFileSync(join(out, "jspdf.pdf"), Buffer.from(js.output("arraybuffer")));
