"""Fetching public datasets the normal way, verified and extracted atomically; offline, a clear error instead."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from underpainting.data.images import DataError

# The CycleGAN authors' dataset server (junyanz/pytorch-CycleGAN-and-pix2pix, datasets/download_cyclegan_dataset.sh).
CYCLEGAN_DATASETS_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"


def download_file(url: str, dest: Path, md5: str | None = None, timeout: float = 30.0) -> Path:
    """Download to a temporary file beside `dest`, check md5 if given, then rename into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    digest = hashlib.md5()
    with (
        urllib.request.urlopen(url, timeout=timeout) as r,
        open(tmp, "wb") as f,
        Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn()
        ) as bar,
    ):
        task = bar.add_task(
            f"downloading {url.rsplit('/', 1)[-1]}", total=int(r.headers.get("Content-Length") or 0) or None
        )
        while chunk := r.read(1 << 20):
            f.write(chunk)
            digest.update(chunk)
            bar.advance(task, len(chunk))
    if md5 is not None and digest.hexdigest() != md5:
        tmp.unlink()
        raise DataError(
            f"{url}: md5 {digest.hexdigest()} does not match the expected {md5}; the download is corrupt"
        )
    tmp.replace(dest)
    return dest


def fetch_cyclegan_dataset(name: str, root: Path, md5: str | None = None) -> Path:
    """Download `<name>.zip` of the CycleGAN datasets and extract it so that `root` holds trainA/trainB/testA/testB."""
    archive = root.parent / f"{name}.zip"
    url = CYCLEGAN_DATASETS_URL.format(name=name)
    try:
        if not archive.exists():
            download_file(url, archive, md5)
    except OSError as e:  # URLError, timeouts, DNS failures: all mean "no network"
        raise DataError(
            f"could not download {url} ({e}).\n"
            f"Download it on a machine with internet access and unzip it so that {root} holds "
            "trainA/ trainB/ testA/ testB/, or point data.root at an existing copy."
        ) from e
    try:
        with zipfile.ZipFile(archive) as z:
            if (bad := z.testzip()) is not None:
                raise DataError(f"{archive}: member {bad} is corrupt; delete the archive and download again")
            with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
                z.extractall(tmp)
                extracted = Path(tmp) / name
                if not extracted.is_dir():
                    raise DataError(
                        f"{archive} does not contain the folder {name}/; is it the right archive?"
                    )
                shutil.move(str(extracted), root)
    except zipfile.BadZipFile as e:
        raise DataError(f"{archive} is not a valid zip file ({e}); delete it and download again") from e
    return root
