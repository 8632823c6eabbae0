"""The browser page: paint a sketch with the palette's class brushes, run the infer.py pipeline on it, get every
image back (docs/app.md). `python -m underpainting.app` (or `underpainting-app`); needs the `app` extra (Gradio).

Gradio is imported with its analytics off: the page never calls out (no telemetry, no version check, no CDN)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
