#!/usr/bin/env python3
"""Regenerates examples/docs/finance/expense-policy.pdf, the multi-page sample PDF.

The PDF is committed; this script only documents where it came from. Needs `pip install fpdf2`.
"""
import datetime
import sys
from fpdf import FPDF

PAGES = [
    ("Travel and Expense Policy", [
        "This policy explains which business expenses Northwind Labs reimburses and how to claim them.",
        "It applies to all employees and to contractors travelling on behalf of the company.",
        "Page 2 covers travel, page 3 covers approvals and reimbursement.",
        "Submit every claim in the expense tool with a photo or scan of the receipt.",
    ]),
    ("Business travel", [
        "Book flights and trains through the travel portal. Economy class is the standard for flights under six hours;",
        "business class may be booked for longer flights.",
        "Hotels: the nightly limit is 180 euros in most cities and 250 euros in London, Paris, New York and Seoul.",
        "Meals while travelling are covered by a daily allowance (per diem) of 45 euros.",
        "Taxis are reimbursed when public transport is unavailable or after 22:00.",
    ]),
    ("Approvals and reimbursement", [
        "Expenses up to 1,000 euros need approval by your manager.",
        "Expenses above 1,000 euros must be approved in advance by a director.",
        "Approved claims are reimbursed with the next salary payment, at the latest within 14 days.",
        "Claims must be submitted within 60 days of the expense; later claims are not reimbursed.",
    ]),
]

def main(out: str) -> None:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    for title, paragraphs in PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 18)
        pdf.cell(0, 12, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=12)
        for p in paragraphs:
            pdf.multi_cell(0, 7, p)
            pdf.ln(3)
    pdf.output(out)

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/docs/finance/expense-policy.pdf")
