"""Report delivery: French/English wording, inline SVG charts, JSON, CSV, HTML and PDF views."""
