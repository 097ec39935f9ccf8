"""Writes a small one-page invoice with reportlab: the PAdES tests' own input,
so a fresh clone needs no fixture files."""

import sys

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


def main() -> None:
    out = sys.argv[1]
    page = canvas.Canvas(out, pagesize=A4)
    page.setTitle("Facture 2026-0042")
    page.drawString(72, 770, "Exemple SA - Facture 2026-0042")
    page.drawString(72, 750, "1 200,00 EUR, payable a 30 jours.")
    page.showPage()
    page.save()


if __name__ == "__main__":
    main()
