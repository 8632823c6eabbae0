"""Fetching public datasets the normal way (a progress bar, a SHA-256 checksum, extracted atomically), as
lightning-hydra-template's MNIST does on first use; offline, a clear error naming both fixes instead."""

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
# SHA-256 of the archives as TensorFlow Datasets records them (tensorflow/datasets url_checksums/cycle_gan.txt).
CYCLEGAN_SHA256 = {"vangogh2photo": "362c3473e70be0944bda08d49d660eafdc2854df55d697835b8186d1d79caaff"}


def download_file(url: str, dest: Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Download to a temporary file beside `dest`, check the SHA-256 if given, then rename into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    digest = hashlib.sha256()
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
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink()
        raise DataError(
            f"{url}: SHA-256 {digest.hexdigest()} does not match the expected {sha256}; the download is corrupt "
            "(run again to download it again)"
        )
    tmp.replace(dest)
    return dest


def fetch_cyclegan_dataset(name: str, root: Path, sha256: str | None = None) -> Path:
    """Download `<name>.zip` of the CycleGAN datasets and extract it so that `root` holds trainA/trainB/testA/testB.
    `sha256`: the archive's checksum; None: the one known for `name` (CYCLEGAN_SHA256), if any."""
    archive = root.parent / f"{name}.zip"
    url = CYCLEGAN_DATASETS_URL.format(name=name)
    try:
        if not archive.exists():
            download_file(url, archive, sha256 or CYCLEGAN_SHA256.get(name))
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
