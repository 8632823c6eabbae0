"""Side-by-side comparison of runs: `python -m underpainting.compare outputs/ --out compare.html`
(`underpainting-compare` when installed).

Reads every run under a folder, whatever logged it (W&B offline or online transaction logs, TensorBoard event files,
CSV, the metrics callback's metrics.json, `infer.py` run folders), and writes one self-contained HTML page (see
`page`): metrics first (last and best, with their protocol), then the config keys that differ, filters by task,
model and tag, sample grids and contact sheets side by side. See docs/compare.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from underpainting.compare.page import render_html, write_compare
from underpainting.compare.runs import Metric, Run, differing_keys, find_runs, load_run
from underpainting.errors import exit_on_user_error

__all__ = ["Metric", "Run", "differing_keys", "find_runs", "load_run", "main", "render_html", "write_compare"]


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="underpainting-compare", description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", default="outputs", help="folder holding runs (default: outputs)")
    p.add_argument("--out", default="compare.html", help="HTML file to write")
    p.add_argument("--title")
    a = p.parse_args(argv)
    path = write_compare(a.root, a.out, a.title)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0
