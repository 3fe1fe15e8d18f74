"""Uploaded replay files, written straight into the data directory as they
arrive (never held in memory), up to a size limit."""

import os
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

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


class ReplayUploadHandler(FileUploadHandler):
    """Writes each chunk to the data directory as it arrives; stops at the limit
    (`too_large` then says so)."""

    too_large = False

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.path = uploads_directory() / f"{uuid.uuid4().hex}.upload"
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
        return StoredUpload(
            self.path,
            name=self.file_name,
            size=file_size,
            content_type=self.content_type,
        )
