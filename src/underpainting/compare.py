"""Side-by-side comparison of runs: `python -m underpainting.compare outputs/ --out compare.html`.

Reads every run under a folder (a run is a directory with `.hydra/config.yaml`: single runs and multirun trials
alike), and writes one self-contained HTML page: a sortable table of runs with the hyperparameters that differ
between them, their metrics (`metrics.json` from the metrics callback, else the last values in `csv/metrics.csv`)
and the protocol each number was computed under; then each run's latest sample grid side by side (the grids
show the same fixed validation inputs), and outputs that several runs wrote under the same file name. Images are
inlined as base64, sorting is vanilla JS: no network, no W&B account.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
# Folders whose images are not per-input outputs (or are duplicated by logger copies of sample grids).
SKIP_DIRS = {".hydra", "wandb", "tensorboard", "checkpoints", "csv", "samples", "lightning_logs"}
# Config keys that differ between any two runs without being hyperparameters.
IGNORED_KEYS = re.compile(r"^(paths\.|hydra\.|run_name$|tags$|callbacks\..*dirpath$|logger\.|.*save_dir$)")
SAMPLE_TAG_ORDER = ("final", "test", "val", "train")
MAX_IMAGE_WIDTH = 640
MAX_ALIGNED_OUTPUTS = 12
MAX_PNG_BYTES = 150_000


@dataclass
class Run:
    path: Path
    name: str
    config: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    protocol: str = ""
    status: str = "incomplete"
    error: str = ""
    sample: Path | None = None
    outputs: dict[str, Path] = field(default_factory=dict)


def _flatten(node, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        out: dict[str, str] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    value = json.dumps(node) if isinstance(node, list) else str(node)
    return {prefix[:-1]: value}


def _csv_last_values(path: Path) -> dict[str, float]:
    """Last non-empty value of every column of a Lightning CSVLogger file."""
    last: dict[str, float] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k in ("epoch", "step") or v in ("", None):
                    continue
                try:
                    last[k] = float(v)
                except ValueError:
                    pass
    return last


def _latest_sample(run_dir: Path) -> Path | None:
    """The newest grid of the most final kind: final_* > test_* > val_* > train_*."""
    folder = run_dir / "samples"
    if not folder.is_dir():
        return None
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    for tag in SAMPLE_TAG_ORDER:
        tagged = sorted(p for p in files if p.name.startswith(f"{tag}_"))
        if tagged:
            return tagged[-1]
    return sorted(files)[-1] if files else None


def _outputs(run_dir: Path) -> dict[str, Path]:
    found = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir)
        if p.suffix.lower() in IMAGE_SUFFIXES and not (set(rel.parts[:-1]) & SKIP_DIRS) and p.is_file():
            found[rel.as_posix()] = p
    return found


def load_run(run_dir: Path, root: Path) -> Run:
    run = Run(path=run_dir, name=run_dir.relative_to(root).as_posix() if run_dir != root else run_dir.name)
    hydra_dir = run_dir / ".hydra"
    try:
        run.config = _flatten(yaml.safe_load((hydra_dir / "config.yaml").read_text()) or {})
    except (OSError, yaml.YAMLError) as err:
        run.error = f"unreadable config: {err}"
    if (hydra_dir / "overrides.yaml").is_file():
        run.overrides = [str(o) for o in (yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) or [])]
    for csv_file in sorted(run_dir.rglob("metrics.csv")):
        run.metrics.update(_csv_last_values(csv_file))
    if (run_dir / "metrics.json").is_file():
        data = json.loads((run_dir / "metrics.json").read_text())
        protocols = []
        for stage in ("val", "test"):
            if stage in data:
                for k, v in data[stage]["metrics"].items():
                    run.metrics[f"{stage}/{k}"] = math.nan if v is None else float(v)
                protocols.append(f"{stage}: {data[stage]['protocol']['summary']}")
        run.protocol = "\n".join(protocols)
    failure = run_dir / "failure.json"
    if failure.is_file():
        info = json.loads(failure.read_text())
        run.status, run.error = "failed", f"{info.get('type', 'error')}: {info.get('message', '')}"
    elif run.metrics or (run_dir / "checkpoints" / "last.ckpt").is_file():
        run.status = "done"
    run.sample = _latest_sample(run_dir)
    run.outputs = _outputs(run_dir)
    return run


def find_runs(root: str | Path) -> list[Run]:
    """Every run directory under `root` (or `root` itself), in path order."""
    root = Path(root)
    dirs = sorted({p.parent.parent for p in root.rglob(".hydra/config.yaml")})
    return [load_run(d, root) for d in dirs]


def differing_keys(runs: Sequence[Run]) -> list[str]:
    """Config keys whose values are not the same in every run (overridden keys first)."""
    keys = sorted({k for r in runs for k in r.config if not IGNORED_KEYS.match(k)})
    diff = [k for k in keys if len({r.config.get(k, "\u2014") for r in runs}) > 1]
    overridden = [o.split("=", 1)[0].lstrip("+~") for r in runs for o in r.overrides]
    return sorted(diff, key=lambda k: (k not in overridden, k))


def _data_uri(path: Path, max_width: int = MAX_IMAGE_WIDTH) -> str:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
        kind = "png"
        if (
            buf.tell() > MAX_PNG_BYTES
        ):  # noisy GAN samples compress badly; high-quality JPEG keeps the page small
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=92, subsampling=0)
            kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    return f"{v:.4g}"


_CSS = """
body{font:14px system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.meta{color:#666;margin-bottom:12px}
.scroll{overflow-x:auto} table{border-collapse:collapse} th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none;white-space:nowrap} th.sorted-asc::after{content:" \\25B2"}
th.sorted-desc::after{content:" \\25BC"} td.num{text-align:right;font-variant-numeric:tabular-nums}
th.metric{background:#e6eefb} tr.failed td{background:#fdecec}
.warn{background:#fff4d6;border:1px solid #e0c060;padding:6px 10px;margin:8px 0}
.cards{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.card{border:1px solid #ccc;padding:8px;flex:1 1 340px;max-width:660px} .card h3{font-size:13px;margin:0 0 6px;word-break:break-all}
.card img{display:block;max-width:100%;image-rendering:pixelated}
.small{color:#666;font-size:12px} .aligned img{max-width:256px;image-rendering:pixelated}
"""

_JS = """
function sortTable(th, dir){
  const table = th.closest('table'); const idx = [...th.parentNode.children].indexOf(th);
  const body = table.tBodies[0]; const rows = [...body.rows];
  if(!dir){ dir = th.classList.contains('sorted-asc') ? 'desc' : 'asc'; }
  [...th.parentNode.children].forEach(h => h.classList.remove('sorted-asc','sorted-desc'));
  th.classList.add('sorted-' + dir);
  const key = r => { const c = r.cells[idx]; const v = c.dataset.v;
    if(v !== undefined && v !== '' && !isNaN(parseFloat(v))) return [0, parseFloat(v)];
    if(v !== undefined) return [1, 0];  /* missing or nan numbers sort last */
    return [2, c.textContent.trim()]; };
  rows.sort((a, b) => { const ka = key(a), kb = key(b);
    if(ka[0] !== kb[0]) return ka[0] - kb[0];
    if(ka[0] === 1) return 0;
    const c = ka[1] < kb[1] ? -1 : ka[1] > kb[1] ? 1 : 0; return dir === 'asc' ? c : -c; });
  rows.forEach(r => body.appendChild(r));
}
document.querySelectorAll('#runs th').forEach(th => th.addEventListener('click', () => sortTable(th)));
const m = location.hash.match(/sort=(-?)([^&]+)/);
if(m){ const th = [...document.querySelectorAll('#runs th')].find(h => h.dataset.key === decodeURIComponent(m[2]));
  if(th) sortTable(th, m[1] ? 'desc' : 'asc'); }
"""


def render_html(runs: Sequence[Run], title: str = "underpainting: runs compared") -> str:
    """The whole page as a string (no external resources)."""
    e = html.escape
    hparams = differing_keys(runs)
    metric_keys = sorted({k for r in runs for k in r.metrics if not k.startswith(("lr/", "train/"))})
    metric_keys += sorted({k for r in runs for k in r.metrics if k.startswith("train/")})
    protocols = {r.protocol for r in runs if r.protocol}
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>",
        f"</head><body><h1>{e(title)}</h1>",
        f"<div class='meta'>{len(runs)} runs. Click a column to sort; hover a metric for its protocol.</div>",
    ]
    if len(protocols) > 1:
        out.append(
            "<div class='warn'>These runs' metrics were computed under different protocols (features, "
            "image counts or reference sets): compare numbers only between runs with the same protocol "
            "(hover the cells).</div>"
        )
    if any("STAND-IN" in p for p in protocols):
        out.append(
            "<div class='warn'>Some FID/KID values use STAND-IN features: they are not comparable to "
            "published FID.</div>"
        )
    out.append(
        "<div class='scroll'><table id='runs'><thead><tr><th data-key='run'>run</th><th data-key='status'>status</th>"
    )
    out += [f"<th data-key='{e(k)}'>{e(k)}</th>" for k in hparams]
    out += [f"<th class='metric' data-key='{e(k)}'>{e(k)}</th>" for k in metric_keys]
    out.append("</tr></thead><tbody>")
    for r in runs:
        cls = " class='failed'" if r.status == "failed" else ""
        status = e(r.status) + (f"<div class='small'>{e(r.error[:200])}</div>" if r.error else "")
        out.append(f"<tr{cls}><td>{e(r.name)}</td><td>{status}</td>")
        out += [f"<td>{e(r.config.get(k, chr(0x2014)))}</td>" for k in hparams]
        for k in metric_keys:
            v = r.metrics.get(k)
            if v is None:
                out.append("<td class='num' data-v=''>\u2014</td>")
            else:
                tip = e(r.protocol) if k.startswith(("val/", "test/")) and r.protocol else ""
                out.append(
                    f"<td class='num' data-v='{'' if math.isnan(v) else v!r}' title='{tip}'>{_fmt(v)}</td>"
                )
        out.append("</tr>")
    out.append("</tbody></table></div>")

    with_samples = [r for r in runs if r.sample is not None]
    if with_samples:
        out.append(
            "<h2>Samples (latest grid of each run; same fixed validation inputs)</h2><div class='cards'>"
        )
        for r in with_samples:
            out.append(
                f"<div class='card'><h3>{e(r.name)}</h3><div class='small'>{e(r.sample.name)}</div>"
                f"<img alt='samples of {e(r.name)}' src='{_data_uri(r.sample)}'></div>"
            )
        out.append("</div>")

    shared = sorted({k for r in runs for k in r.outputs if sum(k in q.outputs for q in runs) > 1})
    if shared:
        cols = [r for r in runs if any(k in r.outputs for k in shared)]
        out.append("<h2>Outputs for the same inputs</h2><table class='aligned'><thead><tr><th>file</th>")
        out += [f"<th>{e(r.name)}</th>" for r in cols]
        out.append("</tr></thead><tbody>")
        for k in shared[:MAX_ALIGNED_OUTPUTS]:
            out.append(f"<tr><td>{e(k)}</td>")
            for r in cols:
                p = r.outputs.get(k)
                out.append(
                    f"<td><img alt='{e(k)}' src='{_data_uri(p, 256)}'></td>" if p else "<td>\u2014</td>"
                )
            out.append("</tr>")
        out.append("</tbody></table>")
        if len(shared) > MAX_ALIGNED_OUTPUTS:
            out.append(f"<div class='small'>{len(shared) - MAX_ALIGNED_OUTPUTS} more files not shown</div>")
    out.append(f"<script>{_JS}</script></body></html>\n")
    return "".join(out)


def write_compare(root: str | Path, out: str | Path, title: str | None = None) -> Path:
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(f"no runs under {root} (a run is a folder with .hydra/config.yaml)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(runs, title or f"underpainting: {len(runs)} runs under {root}"))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m underpainting.compare", description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", default="outputs", help="folder holding runs (default: outputs)")
    p.add_argument("--out", default="compare.html", help="HTML file to write")
    p.add_argument("--title")
    a = p.parse_args(argv)
    try:
        path = write_compare(a.root, a.out, a.title)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
