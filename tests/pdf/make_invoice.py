"""Writes a small one-page invoice with reportlab: the PAdES tests' own input,
so a fresh clone needs no fixture files. Also the base document of most of the
corpus written by make_corpus.py."""

import sys

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


def write_invoice(out: str) -> None:
    """The invoice at `out`, byte for byte the same on every run (reportlab's
    invariant mode: fixed dates and /ID)."""
    page = canvas.Canvas(out, pagesize=A4, invariant=1)
    page.setTitle("Facture 2026-0042")
    page.drawString(72, 770, "Exemple SA - Facture 2026-0042")
    page.drawString(72, 750, "1 200,00 EUR, payable a 30 jours.")
    page.showPage()
    page.save()


def main() -> None:
    write_invoice(sys.argv[1])


if __name__ == "__main__":
    main()
