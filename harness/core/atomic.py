"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable, Optional


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _naming(exc: OSError, tmp: Path, path: Path) -> OSError:
    """The error with the file the user knows (``path``) in place of our temporary name; a write
    error (disk full) carries no name at all. An error about another file (the source) is kept."""
    names = {str(f) for f in (exc.filename, exc.filename2) if f}
    if names and str(tmp) not in names:
        return exc
    return OSError(exc.errno, exc.strerror, str(path))


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write-then-rename; on any failure (disk full, read-only) the temporary file is removed and
    the old file, if any, is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, tmp, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """A matplotlib figure as PNG, atomically (an error names ``path``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, dpi=dpi, format="png")
    write_bytes(path, buffer.getvalue())
    return Path(path)


def write_text(path: str | Path, text: str) -> None:
    """LF line endings always (Darknet list and names files need them)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    """JSON with a final newline, atomically (values JSON has no type for are written as text)."""
    write_text(path, json.dumps(data, indent=indent, default=str) + "\n")
    return Path(path)


class CorruptFileError(ValueError):
    """A file the harness wrote earlier cannot be parsed (cut short by a crash, a full disk, an edit)."""


def read_json(path: str | Path, what: str) -> Any:
    """The JSON in ``path``; a file that is not JSON raises CorruptFileError saying what it is and what to do."""
    path = Path(path)
    text = path.read_text()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CorruptFileError(
            f"{path}: the {what} is not valid JSON ({exc}); it was probably cut short by a "
            "crash or a full disk: restore it from a copy, or rerun the command that writes "
            "it"
        ) from None


_JSON_KINDS: dict[type, str] = {dict: "object", list: "list"}


def load_json(
    path: str | Path, what: str, error: Callable[[str], Exception] = ValueError, kind: Optional[type] = None
) -> Any:
    """The one read-or-raise for JSON a user or a run hands us: the JSON in ``path``, or ``error`` with a
    message that names the file and why — ``PATH: cannot read the WHAT: …`` (missing, unreadable, not
    text), ``PATH: not valid JSON (… at line N)``, or, with ``kind`` (dict or list), ``PATH: expected a
    JSON object, found list``. (:func:`read_json` is for the harness's own records: its error says how
    to recover a truncated one.)"""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the {what}: {exc}") from None
    if kind is not None and not isinstance(data, kind):
        raise error(f"{path}: expected a JSON {_JSON_KINDS.get(kind, kind.__name__)}, found {type(data).__name__}")
    return data


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    """A CSV file (header + rows), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def link_or_copy(src: str | Path, dst: str | Path) -> str:
    """Hard-link ``src`` to ``dst`` (copy across file systems); returns "link" or "copy".

    Links keep the original JPEG bytes (Caffe's records hold the same bytes) and cost no space.
    """
    # A hard link to a symlink would copy the link itself, which a relative target breaks: link the file.
    src, dst = Path(src).resolve(), Path(dst)
    if dst.exists() and os.path.samefile(src, dst):
        return "link"  # already linked (rename onto the same inode would be a no-op)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(dst)
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
        how = "link"
    except OSError:
        how = "copy"
    try:
        if how == "copy":
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, tmp, dst) from None
    return how
