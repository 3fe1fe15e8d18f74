"""Uploaded replay files, written straight into the data directory as they
arrive (never held in memory), up to a size limit, and removed once nothing
needs them."""

import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from sandbox.replay.models import Replay

logger = logging.getLogger("sandbox.replay")

# SANDBOX_REPLAY_MAX_UPLOAD_MB: the largest file the replay page accepts.
MAX_UPLOAD_BYTES = int(os.environ.get("SANDBOX_REPLAY_MAX_UPLOAD_MB", "2048")) << 20
TOO_LARGE = (
    "The file is larger than {limit} MB, the most the page accepts; replay it "
    "with manage.py replay."
)


def uploads_directory() -> Path:
    directory = Path(settings.DATA_DIR) / "replays"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class StoredUpload(UploadedFile):
    """A file received into the data directory; `path` is where it is."""

    def __init__(self, path: Path, *, name: str, size: int, content_type: str):
        super().__init__(
            path.open("rb"), name=name, content_type=content_type, size=size
        )
        self.path = path


def upload_is_ours(path: str | Path) -> bool:
    """The file is in the uploads directory (a replay of a file the user named on
    the command line points at their own file, which is never removed)."""
    return Path(path).resolve().parent == uploads_directory().resolve()


def upload_remove(*, path: str | Path) -> bool:
    """Remove an uploaded file, if it is one; whether it was removed."""
    if not upload_is_ours(path):
        return False
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return False
    except OSError:
        logger.exception("could not remove the upload %s", path)
        return False
    return True


def uploads_sweep(*, older_than_seconds: float = 3600) -> list[Path]:
    """Remove the files of the uploads directory that no replay points at and
    that were last written more than `older_than_seconds` ago (an upload still
    arriving, or one whose replay is being made, is newer). One directory listing
    and one query; returns what was removed."""
    directory = uploads_directory().resolve()
    cutoff = time.time() - older_than_seconds
    old = []
    for entry in os.scandir(directory):
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                old.append(Path(entry.path))
        except FileNotFoundError:
            continue
    _shuffles_sweep()
    if not old:
        return []
    used = {
        Path(stored).resolve()
        for stored in Replay.objects.exclude(file_path="").values_list(
            "file_path", flat=True
        )
    }
    return [path for path in old if path not in used and upload_remove(path=path)]


def shuffles_directory() -> Path:
    """Where shuffled replays keep their sources' order, a folder each."""
    return Path(settings.DATA_DIR) / "replay-shuffles"


def _shuffles_sweep() -> None:
    """Remove the shuffle folders of replays that are gone or all enqueued."""
    try:
        entries = list(os.scandir(shuffles_directory()))
    except FileNotFoundError:
        return
    if not entries:
        return
    feeding = {
        str(pk)
        for pk in Replay.objects.filter(shuffle=True, fed_at__isnull=True)
        .order_by()
        .values_list("pk", flat=True)
    }
    for entry in entries:
        if entry.name not in feeding:
            shutil.rmtree(entry.path, ignore_errors=True)


class ReplayUploadHandler(FileUploadHandler):
    """Writes each chunk to the data directory as it arrives; stops at the limit
    (`too_large` then says so). `discard()` removes what it wrote unless a replay
    was made of it (`kept`)."""

    too_large = False
    kept: Path | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.written: list[Path] = []
        self.uploads: list[StoredUpload] = []

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.path = uploads_directory() / f"{uuid.uuid4().hex}.upload"
        self.written.append(self.path)
        self.out = self.path.open("wb")
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > MAX_UPLOAD_BYTES:
            self.too_large = True
            self.out.close()
            self.path.unlink(missing_ok=True)
            raise StopUpload(connection_reset=True)
        self.out.write(raw_data)

    def file_complete(self, file_size: int) -> StoredUpload:
        self.out.close()
        upload = StoredUpload(
            self.path,
            name=self.file_name,
            size=file_size,
            content_type=self.content_type,
        )
        self.uploads.append(upload)
        return upload

    def discard(self) -> None:
        """Remove every file this request wrote but `kept`, whichever way the
        request ended: refused by the form or the file's contents, by CSRF, or
        broken off mid-upload."""
        for upload in self.uploads:
            upload.close()
        if self.written and not self.out.closed:
            self.out.close()
        for path in self.written:
            if path != self.kept:
                path.unlink(missing_ok=True)
