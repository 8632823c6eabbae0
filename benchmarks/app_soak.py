"""Soak of the browser page's API (a benchmark, not a test; localhost only): `python -m underpainting.app` in its own
process, 4 concurrent `gradio_client` clients sending about 20 jobs, bad ones among them (the 140 KB 12000x12000
PNG of issue 22, a truncated PNG, a text file, a missing checkpoint, a label-map size past the widget's bound).

    python benchmarks/app_soak.py [--jobs 20] [--clients 4]

Every good job must come back painted (its contact sheet written and returned), every bad one with its error, the
server must still serve at the end (the page answers and one more job paints), and its memory must be back near
where it started. Prints a row per job and a summary table with the server's RSS.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SKETCH = ROOT / "examples" / "sketches" / "wild_vegetation.png"
SIZES = (512, 768, 1024)  # the good jobs' label-map sizes (1024: the size widget's top)
TINY_CYCLEGAN = [  # the test suite's tiny CycleGAN: a painter that trains in seconds (memory and speed here are the app's)
    "model=cyclegan", "data=synthetic", "data.image_size=32", "data.num_train=4", "data.num_val=1",
    "data.batch_size=2", "data.num_workers=0", "model.G_AB.ngf=8", "model.G_AB.n_blocks=1", "model.D_A.ndf=8",
    "logger=none", "callbacks.progress_bar=null", "callbacks.sample_grid=null", "print_config=false",
    "trainer.max_steps=2",
]  # fmt: skip


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inputs(work: Path) -> dict[str, Path]:
    """The three bad uploads of the soak, made here (benchmarks never import the tests): a 12000x12000 palette PNG
    that is small on disk (issue 22's app killer), a PNG cut in half, and text named .png."""
    from PIL import Image

    work.mkdir(parents=True, exist_ok=True)
    bomb = Image.new("P", (12000, 12000), 0)
    bomb.putpalette([156, 238, 221] * 256)
    bomb.save(work / "bomb.png", optimize=True)
    Image.new("RGB", (64, 64), (123, 200, 0)).save(work / "whole.png")
    whole = (work / "whole.png").read_bytes()
    (work / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (work / "notes.png").write_text("this is not an image\n")
    return {"bomb": work / "bomb.png", "truncated": work / "truncated.png", "text": work / "notes.png"}


def plan(n: int, ckpt: Path, files: dict[str, Path], work: Path) -> list[tuple[str, dict, str | None]]:
    """(kind, arguments, expected error pattern or None) for n jobs: 3 good (512, 768, 1024 px: the size widget's
    top) for every 2 bad, the bad kinds in turn."""
    good = {"sketch": SKETCH, "cyclegan_checkpoint": str(ckpt)}
    bad = [
        (
            "bomb 12000x12000",
            {"sketch": files["bomb"]},
            "144 MP is over the limit of 4.2 MP (`app.max_pixels",
        ),
        ("truncated png", {"sketch": files["truncated"]}, "cannot be read as an image"),
        ("text as png", {"sketch": files["text"]}, "cannot be read as an image"),
        ("missing ckpt", {"cyclegan_checkpoint": str(work / "gone.ckpt")}, "gone.ckpt"),
        ("size 20000", {"size": 20000}, "greater than maximum value"),  # the size widget's own bound
    ]
    jobs, k = [], 0
    for i in range(n):
        if i % 5 in (1, 3):
            kind, kw, expect = bad[k % len(bad)]
            jobs.append((kind, {**good, **kw}, expect))
            k += 1
        else:
            jobs.append((f"good {SIZES[i % 3]} px", dict(good, size=SIZES[i % 3]), None))
    return jobs


def run_job(url: str, kw: dict) -> tuple[bool, str, float]:
    from gradio_client import Client, handle_file

    args = {
        "stage1": "procedural", "stage1_checkpoint": None, "stage2": ["cyclegan"], "style": "synthetic",
        "style_painting": None, "style_labels": None, "xray": None, "size": 0, "steps": 0, "seed": 1889, **kw,
    }  # fmt: skip
    args["sketch"] = handle_file(str(args["sketch"]))
    start = time.perf_counter()
    try:
        status, sheet, *_ = Client(url, verbose=False).predict(**args, api_name="/paint_sketch")
        ok = "done" in status and Path(sheet).is_file() and Image.open(sheet).width > 256
        return ok, status if ok else f"no sheet: {status}", time.perf_counter() - start
    except Exception as e:  # gradio_client's AppError carries the page's message
        return False, f"{type(e).__name__}: {e}", time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--clients", type=int, default=4)
    a = p.parse_args()
    import torch

    work = Path(tempfile.mkdtemp(prefix="underpainting-soak-"))
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *TINY_CYCLEGAN, f"hydra.run.dir={work / 'train' / 'painter'}"],
        check=True, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    ckpt = work / "train" / "painter" / "checkpoints" / "last.ckpt"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(work / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen(
        [sys.executable, "-m", "underpainting.app", "--port", str(port), f"app.run_dir={work / 'app'}",
         f"app.train_dir={work / 'train'}", "progress=false", "logger=none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        # Warm up with one good job of each size: the allocator's pools reach their working size, so what the
        # soak adds on top of this is what it keeps.
        warm = [run_job(url, {"sketch": SKETCH, "cyclegan_checkpoint": str(ckpt), "size": s}) for s in SIZES]
        warm_ok, warm_s = all(ok for ok, _, _ in warm), sum(s for _, _, s in warm)
        start_mb = rss_mb(server.pid)
        jobs = plan(a.jobs, ckpt, inputs(work), work)
        results: list[tuple[int, int, str, bool, str, float, str | None]] = []
        peak = [start_mb]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(server.pid))
                time.sleep(0.1)

        def client(c: int) -> None:
            for j in range(c, len(jobs), a.clients):
                kind, kw, expect = jobs[j]
                ok, message, seconds = run_job(url, kw)
                results.append((c, j, kind, ok, message, seconds, expect))

        threading.Thread(target=watch, daemon=True).start()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        time.sleep(3)  # let the last job's buffers go
        done.set()
        end_mb = rss_mb(server.pid)
        alive = urllib.request.urlopen(url, timeout=10).status == 200
        last_ok, _, _ = run_job(url, {"sketch": SKETCH, "cyclegan_checkpoint": str(ckpt)})
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}; server {url}; work folder {work}")
    print(
        f"warm-up jobs ({', '.join(map(str, SIZES))} px): {'painted' if warm_ok else 'FAILED'} in {warm_s:.1f} s\n"
    )
    print(f"{'client':>6} {'job':>4} {'kind':<18} {'s':>6}  outcome")
    for c, j, kind, ok, message, seconds, expect in sorted(results, key=lambda r: r[1]):
        right = ok if expect is None else (not ok and expect in message)
        outcome = ("painted" if ok else message.splitlines()[-1][:100]) + (
            "" if right else "  <-- UNEXPECTED"
        )
        print(f"{c:>6} {j:>4} {kind:<18} {seconds:>6.1f}  {outcome}")
    by_kind = defaultdict(list)
    for _, _, kind, ok, message, seconds, expect in results:
        by_kind[kind].append((ok if expect is None else (not ok and expect in message), seconds))
    print(f"\n{'kind':<18} {'jobs':>4} {'as expected':>11} {'mean s':>7} {'max s':>6}")
    for kind, rows in sorted(by_kind.items()):
        secs = [s for _, s in rows]
        print(
            f"{kind:<18} {len(rows):>4} {sum(r for r, _ in rows):>11} {np.mean(secs):>7.1f} {max(secs):>6.1f}"
        )
    expected = sum(r for rows in by_kind.values() for r, _ in rows)
    print(
        f"\n{len(results)} jobs from {a.clients} clients in {wall:.0f} s: {expected} as expected; server up at the "
        f"end: {alive and last_ok} (page answers, one more job painted)\nserver RSS: {start_mb:.0f} MB after the "
        f"warm-up jobs, peak {peak[0]:.0f} MB, {end_mb:.0f} MB at the end ({end_mb - start_mb:+.0f} MB)"
    )


if __name__ == "__main__":
    main()
