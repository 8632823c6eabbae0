"""The compare page: one self-contained HTML file (images inlined as base64, plain JavaScript, no network).

One table per task (training runs, inference runs). Columns: the run, its status, model and tags; then its metrics
(last and best of each evaluated number, KID with its std, the protocol they were computed under as P1, P2... with
the full lines below the table); the training losses (last value; shown on request); then only the config keys that
differ between the runs shown, grouped model, data, trainer, other. Filters by task, model and tag hide rows, cards and
the config columns that stop differing; the best value of each metric column among the visible runs is highlighted.
Below: each run's latest sample grid (inference: its overview) side by side, and every inference run's contact sheet
of the same sketch in one row.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from PIL import Image

from underpainting.compare.runs import Metric, Run, config_group, differing_keys, find_runs
from underpainting.data.images import open_image
from underpainting.errors import DataError
from underpainting.metrics.protocol import higher_is_better
from underpainting.runtime.destinations import writable_folder

log = logging.getLogger(__name__)
TASK_TITLES = {"train": "Training runs", "infer": "Inference runs (infer.py / app)"}
MAX_IMAGE_WIDTH = 640
MAX_SHEET_WIDTH = 900
MAX_PNG_BYTES = 150_000
EVAL_PREFIXES = ("val/", "test/", "final/", "infer/")
DASH = "\u2014"


def _img(path: Path, alt: str, run: Run, max_width: int = MAX_IMAGE_WIDTH) -> str:
    """An <img> of the picture, or, when it cannot be read (broken, over the pixel limit), the reason, also
    recorded on the run."""
    try:
        return f"<img alt='{html.escape(alt)}' src='{_data_uri(path, max_width)}'>"
    except DataError as err:
        run.error = "; ".join(filter(None, [run.error, str(err)]))
        return f"<div class='small err'>{html.escape(str(err))}</div>"


def _data_uri(path: Path, max_width: int = MAX_IMAGE_WIDTH) -> str:
    with open_image(path) as im:
        try:
            im = im.convert("RGB")
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"{path}: cannot be read as an image ({e})") from None
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
    return "nan" if math.isnan(v) else f"{v:.4g}"


def _num_cell(v: float | None, extra: str = "", cls: str = "num") -> str:
    if v is None:
        return f"<td class='{cls}' data-v=''>{DASH}</td>"
    data = "" if math.isnan(v) else repr(float(v))
    return f"<td class='{cls}' data-v='{data}'>{_fmt(v)}{extra}</td>"


def _metric_columns(runs: Sequence[Run]) -> tuple[list[str], list[str], set[str]]:
    """Evaluation metrics (kid_std folds into kid), training losses, and the metrics with more than one value."""
    keys = {k for r in runs for k in r.metrics}
    evals = sorted(k for k in keys if k.startswith(EVAL_PREFIXES) and not k.endswith("_std"))
    losses = sorted(k for k in keys if k.startswith("train/"))
    repeated = {k for k in evals if any(r.metrics[k].count > 1 for r in runs if k in r.metrics)}
    return evals, losses, repeated


def _protocol_ids(runs: Sequence[Run]) -> dict[str, str]:
    lines = sorted({line for r in runs for line in r.protocol.values()})
    return {line: f"P{i + 1}" for i, line in enumerate(lines)}


def _attrs(run: Run) -> str:
    e = html.escape
    return f"data-task='{e(run.task)}' data-model='{e(run.model)}' data-tags='{e('|'.join(run.tags))}'"


def _run_cell(run: Run) -> str:
    e = html.escape
    wandb = f" \u00b7 W&amp;B {e(run.wandb['id'])}" if run.wandb.get("id") else ""
    return (
        f"<td class='run'><b>{e(run.run_name)}</b><div class='small'>{e(run.started)}{wandb}</div>"
        f"<div class='small path'>{e(run.name)}</div></td>"
    )


def _table(task: str, runs: Sequence[Run], protocol_ids: dict[str, str]) -> str:
    e = html.escape
    evals, losses, repeated = _metric_columns(runs)
    config = differing_keys(runs)
    groups: list[tuple[str, str, int]] = [("", "", 4)]  # (label, class, number of columns)
    heads = [
        "<th data-key='run'>run</th>",
        "<th data-key='status'>status</th>",
        "<th data-key='model'>model</th>",
        "<th data-key='tags'>tags</th>",
    ]
    for k in evals:
        direction = "max" if higher_is_better(k) else "min"
        arrow = "\u2191" if direction == "max" else "\u2193"
        cols = ["last", "best"] if k in repeated else ["value"]
        groups.append((f"{k} {arrow}", "metric", len(cols)))
        for c in cols:
            key = k if c != "best" else f"best:{k}"
            heads.append(f"<th class='metric' data-key='{e(key)}' data-dir='{direction}'>{c}</th>")
    if any(r.protocol for r in runs):
        groups.append(("", "metric", 1))
        heads.append("<th class='metric' data-key='protocol'>protocol</th>")
    if losses:
        groups.append(("training losses (last)", "loss", len(losses)))
        heads += [f"<th class='loss' data-key='{e(k)}'>{e(k.removeprefix('train/'))}</th>" for k in losses]
    for group in dict.fromkeys(config_group(k) for k in config):
        keys = [k for k in config if config_group(k) == group]
        groups.append((group, "cfg", len(keys)))
        heads += [
            f"<th class='cfg' data-key='{e(k)}'>{e(k.removeprefix(group + '.') if group != 'other' else k)}</th>"
            for k in keys
        ]

    out = [f"<div class='scroll'><table class='runs' id='runs-{e(task)}'><thead><tr class='groups'>"]
    first = 0
    for label, cls, n in groups:
        out.append(f"<th class='{cls}' colspan='{n}' data-first='{first}' data-count='{n}'>{e(label)}</th>")
        first += n
    out.append("</tr><tr>" + "".join(heads) + "</tr></thead><tbody>")
    for r in runs:
        cls = " class='failed'" if r.status in ("failed", "partly failed") else ""
        status = e(r.status) + (f"<div class='small err'>{e(r.error[:300])}</div>" if r.error else "")
        tags = "".join(f"<span class='tag'>{e(t)}</span>" for t in r.tags)
        out.append(
            f"<tr{cls} {_attrs(r)}>{_run_cell(r)}<td>{status}</td><td>{e(r.model)}</td><td>{tags}</td>"
        )
        for k in evals:
            m: Metric | None = r.metrics.get(k)
            std = r.metrics.get(f"{k}_std")
            show_std = m and std and not math.isnan(std.last)
            extra = f"<span class='small'> \u00b1 {_fmt(std.last)}</span>" if show_std else ""
            out.append(_num_cell(m.last if m else None, extra, "num metric"))
            if k in repeated:
                out.append(_num_cell(m.best if m else None, "", "num metric"))
        if any(x.protocol for x in runs):
            ids = sorted({protocol_ids[p] for p in r.protocol.values()})
            title = e("\n".join(f"{s}: {p}" for s, p in r.protocol.items()))
            out.append(f"<td title='{title}'>{' '.join(ids) or DASH}</td>")
        for k in losses:
            m = r.metrics.get(k)
            out.append(_num_cell(m.last if m else None, "", "num loss"))
        for k in config:
            out.append(f"<td class='cfg'>{e(r.config.get(k, DASH))}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    sources = sorted({s for r in runs for s in r.sources})
    out.append(
        f"<div class='small'>{len(runs)} runs; numbers read from {', '.join(sources) or 'nothing'}; "
        f"<span class='ndiff'>{len(config)}</span> config keys differ among the runs shown.</div>"
    )
    return "".join(out)


def _select(name: str, label: str, values: Sequence[str]) -> str:
    e = html.escape
    opts = "".join(f"<option value='{e(v)}'>{e(v)}</option>" for v in values)
    return f"<label>{label} <select id='f-{name}'><option value=''>all</option>{opts}</select></label>"


def _cards(runs: Sequence[Run]) -> str:
    e = html.escape
    cards = []
    for r in sorted(runs, key=lambda r: r.task != "train"):  # training grids first, then inference overviews
        if r.sample is None:
            continue
        what = "overview" if r.task == "infer" else r.sample.name
        cards.append(
            f"<div class='card' {_attrs(r)}><h3>{e(r.run_name)} <span class='small'>{e(r.model)}</span></h3>"
            f"<div class='small'>{e(r.started)} \u00b7 {e(what)}</div>"
            f"{_img(r.sample, f'samples of {r.name}', r)}</div>"
        )
    if not cards:
        return ""
    return (
        "<div class='pictures'><h2>Samples side by side</h2><div class='small'>Training runs: the latest grid (the "
        "sample-grid callback always renders the same fixed validation inputs, so the grids line up). Inference "
        "runs: the overview of every sketch.</div><div class='cards'>" + "".join(cards) + "</div></div>"
    )


def _sheets(runs: Sequence[Run]) -> str:
    e = html.escape
    with_sheets = [r for r in runs if r.sheets]
    sketches = sorted({s for r in with_sheets for s in r.sheets})
    if not sketches:
        return ""
    out = ["<div class='pictures'><h2>Contact sheets: the same sketch, every attempt</h2>"]
    for sketch in sketches:
        out.append(f"<div class='sheet-group'><h3>{e(sketch)}</h3><div class='cards'>")
        for r in with_sheets:
            if sketch in r.sheets:
                out.append(
                    f"<div class='card sheet' {_attrs(r)}><h3>{e(r.run_name)} <span class='small'>{e(r.model)}"
                    f"</span></h3><div class='small'>{e(r.started)}</div>"
                    f"{_img(r.sheets[sketch], f'{sketch} by {r.name}', r, MAX_SHEET_WIDTH)}"
                    "</div>"
                )
        out.append("</div></div>")
    out.append("</div>")
    return "".join(out)


_CSS = """
body{font:14px system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px} h3{font-size:13px;margin:12px 0 6px}
.meta{color:#666;margin-bottom:8px} .filters{margin:8px 0 12px;display:flex;gap:16px;flex-wrap:wrap;align-items:center}
.scroll{overflow-x:auto} table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none;white-space:nowrap}
tr.groups th{cursor:default;text-align:center} th.sorted-asc::after{content:" \\25B2"} th.sorted-desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
th.metric{background:#e6eefb} td.best{background:#d8f5d0;font-weight:bold} th.cfg{background:#f5f0e6}
tr.failed td{background:#fdecec} .err{color:#a00} .tag{background:#eef;border-radius:3px;padding:0 4px;margin-right:3px;font-size:12px}
.warn{background:#fff4d6;border:1px solid #e0c060;padding:6px 10px;margin:8px 0}
.cards{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.card{border:1px solid #ccc;padding:8px;flex:0 1 auto;max-width:660px} .card.sheet{max-width:920px}
.card img{display:block;max-width:100%;image-rendering:pixelated}
.small{color:#666;font-size:12px} .path{word-break:break-all} .hidden{display:none!important}
ol.protocols li{font-size:12px;color:#444;margin-bottom:4px}
body:not(.show-losses) .loss{display:none}
"""

_JS = """
const $$ = s => [...document.querySelectorAll(s)];
function headRow(table){ return table.tHead.rows[1]; }
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
function visible(el, f){
  return (!f.task || el.dataset.task === f.task) && (!f.model || el.dataset.model === f.model)
    && (!f.tag || el.dataset.tags.split('|').includes(f.tag));
}
function apply(){
  const f = {task: $$('#f-task')[0].value, model: $$('#f-model')[0].value, tag: $$('#f-tag')[0].value};
  document.body.classList.toggle('show-losses', $$('#f-losses')[0].checked);
  $$('[data-task]').forEach(el => el.classList.toggle('hidden', !visible(el, f)));
  $$('section.task').forEach(s => s.classList.toggle('hidden', !s.querySelector('tbody tr:not(.hidden)')));
  $$('table.runs').forEach(table => {
    const rows = [...table.tBodies[0].rows].filter(r => !r.classList.contains('hidden'));
    const heads = [...headRow(table).children];
    heads.forEach((th, i) => {
      const cells = [...table.tBodies[0].rows].map(r => r.cells[i]);
      cells.forEach(c => c.classList.remove('best'));
      let hide = false;
      if(th.classList.contains('cfg')){  /* only the keys that still differ among the rows shown */
        hide = new Set(rows.map(r => r.cells[i].textContent)).size <= 1 && rows.length > 1;
      } else if(th.dataset.dir !== undefined || th.classList.contains('loss')){  /* numbers none of them has */
        hide = rows.length > 0 && rows.every(r => r.cells[i].dataset.v === '' && r.cells[i].textContent === '\u2014');
      }
      [th, ...cells].forEach(c => c.classList.toggle('hidden', hide));
      if(th.dataset.dir){
        const vals = rows.map(r => parseFloat(r.cells[i].dataset.v)).filter(v => !isNaN(v));
        if(vals.length > 1){
          const best = th.dataset.dir === 'max' ? Math.max(...vals) : Math.min(...vals);
          rows.forEach(r => { if(parseFloat(r.cells[i].dataset.v) === best) r.cells[i].classList.add('best'); });
        }
      }
    });
    [...table.tHead.rows[0].children].forEach(g => {
      const first = +g.dataset.first, n = +g.dataset.count;
      const shown = heads.slice(first, first + n).filter(h => !h.classList.contains('hidden')
        && !(h.classList.contains('loss') && !document.body.classList.contains('show-losses'))).length;
      g.colSpan = Math.max(shown, 1); g.classList.toggle('hidden', shown === 0);
    });
    const n = heads.filter(h => h.classList.contains('cfg') && !h.classList.contains('hidden')).length;
    table.closest('section').querySelector('.ndiff').textContent = n;
  });
  $$('.sheet-group').forEach(g => g.classList.toggle('hidden', !g.querySelector('.card:not(.hidden)')));
  $$('.pictures').forEach(g => g.classList.toggle('hidden', !g.querySelector('.card:not(.hidden)')));
}
$$('table.runs tr:nth-child(2) th').forEach(th => th.addEventListener('click', () => sortTable(th)));
$$('.filters select, .filters input').forEach(el => el.addEventListener('change', apply));
const params = new URLSearchParams(location.hash.slice(1));
for(const k of ['task','model','tag']){ const el = $$('#f-' + k)[0]; if(params.get(k) !== null) el.value = params.get(k); }
if(params.get('losses')) $$('#f-losses')[0].checked = true;
apply();
const s = params.get('sort');
if(s){ const desc = s.startsWith('-'); const key = desc ? s.slice(1) : s;
  $$('table.runs tr:nth-child(2) th').filter(h => h.dataset.key === key).forEach(th => sortTable(th, desc ? 'desc' : 'asc')); }
"""


def render_html(runs: Sequence[Run], title: str = "underpainting: runs compared") -> str:
    """The whole page as a string (no external resources)."""
    e = html.escape
    protocol_ids = _protocol_ids(runs)
    tasks = [t for t in ("train", "infer") if any(r.task == t for r in runs)]
    tasks += sorted({r.task for r in runs} - set(tasks))
    models = sorted({r.model for r in runs})
    tags = sorted({t for r in runs for t in r.tags})
    counts = ", ".join(f"{sum(r.task == t for r in runs)} {t}" for t in tasks)
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>",
        f"</head><body><h1>{e(title)}</h1>",
        f"<div class='meta'>{len(runs)} runs ({counts}); page written {datetime.now():%Y-%m-%d %H:%M}. "
        "Click a column to sort; the best value of each metric column among the runs shown is green "
        "(\u2193 lower is better, \u2191 higher).</div>",
        "<div class='filters'>",
        _select("task", "task", tasks),
        _select("model", "model", models),
        _select("tag", "tag", tags),
        "<label><input type='checkbox' id='f-losses'> training losses</label></div>",
    ]
    if len(protocol_ids) > 1:
        out.append(
            "<div class='warn'>These runs' metrics were computed under different protocols (features, resize, "
            "image counts or reference sets): compare numbers only between runs with the same protocol id.</div>"
        )
    if any("STAND-IN" in p for p in protocol_ids):
        out.append(
            "<div class='warn'>Some FID/KID values use STAND-IN features: they are not comparable to "
            "published FID.</div>"
        )
    for task in tasks:
        group = [r for r in runs if r.task == task]
        out.append(f"<section class='task'><h2>{e(TASK_TITLES.get(task, task))}</h2>")
        out.append(_table(task, group, protocol_ids))
        out.append("</section>")
    if protocol_ids:
        out.append("<h3>Protocols</h3><ol class='protocols'>")
        out += [f"<li><b>{pid}</b>: {e(line)}</li>" for line, pid in protocol_ids.items()]
        out.append("</ol>")
    out.append(_cards(runs))
    out.append(_sheets(runs))
    out.append(f"<script>{_JS}</script></body></html>\n")
    return "".join(out)


def write_compare(root: str | Path, out: str | Path, title: str | None = None) -> Path:
    """Find the runs under `root` and write the page to `out`; what could not be read is said on the page and in
    the log (a warning per run), never dropped in silence."""
    out = Path(out)
    writable_folder(out.parent, "--out")
    runs = find_runs(root)
    if not runs:
        raise DataError(f"no runs under {root} (a run is a folder with .hydra/config.yaml)")
    page = render_html(runs, title or f"underpainting: {len(runs)} runs under {root}")
    for r in runs:
        if r.error:
            log.warning("%s: %s", r.path, r.error)
    out.write_text(page)
    return out
