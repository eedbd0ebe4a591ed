"""Reports: notebook execution into HTML, figures, Markdown tables."""
