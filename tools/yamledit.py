"""Editing stack files: a ruamel round trip that keeps comments, key order, quoting and flow
style, and writes of several files that happen all together or not at all (tools.replicate)."""

from __future__ import annotations

import copy
import functools
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken


def round_trip() -> YAML:
    rt = YAML()  # round trip: comments, key order, quoting and flow style survive
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def load(text: str) -> Any:
    """`text` as a round-trip document of its own (the caller may edit it)."""
    return copy.deepcopy(_parsed(text))


# ruamel's round-trip reader is pure Python (a large stack file takes a tenth of a second or
# more); a deep copy of the parsed document takes a seventh of that, and a process reading
# the same text again (tools.replicate's checks, the tests' runs) reuses the parse.
@functools.lru_cache(maxsize=8)
def _parsed(text: str) -> Any:
    return round_trip().load(text)


def styled(value: Any, like: Any) -> Any:
    """`value` as ruamel nodes, taking flow style and quoting from `like` (the source's node)."""
    if isinstance(value, Mapping):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = styled(item, like.get(key) if isinstance(like, Mapping) else None)
        if isinstance(like, CommentedMap) and like.fa.flow_style():
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq()
        for i, item in enumerate(value):
            template = like[min(i, len(like) - 1)] if isinstance(like, list) and like else None
            seq.append(styled(item, template))
        if isinstance(like, CommentedSeq) and like.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and isinstance(like, ScalarString):
        return type(like)(value)
    return value


def _is_block(node: Any) -> bool:
    return isinstance(node, CommentedMap | CommentedSeq) and not node.fa.flow_style() and len(node) > 0


def _last(node: Any) -> Any:
    return node[len(node) - 1] if isinstance(node, CommentedSeq) else node[next(reversed(node))]


def _detach_trailing(node: Any) -> str:
    """Remove and return (as text, indentation included) the full-line comments that follow
    the block collection `node`.

    ruamel keeps them on the deepest last node (they are the lines before the next key), so an
    item appended after `node`'s last one would otherwise land below them.
    """
    text = ""
    while _is_block(node):
        key = len(node) - 1 if isinstance(node, CommentedSeq) else next(reversed(node))
        slot = node.ca.items.get(key)
        index = 0 if isinstance(node, CommentedSeq) else 2
        if slot and len(slot) > index and isinstance(slot[index], CommentToken):
            head, newline, tail = slot[index].value.partition("\n")
            text += tail
            if head.strip():
                slot[index].value = head + newline  # an end-of-line comment stays where it is
            else:
                slot[index] = None
        for token in node.ca.end or []:
            column = token.start_mark.column if token.value.startswith("#") else 0
            text += " " * column + token.value
        node.ca.end = []
        node = _last(node)
    return text


def _attach_trailing(node: Any, text: str) -> None:
    while _is_block(_last(node)):
        node = _last(node)
    if isinstance(node, CommentedSeq):
        if node.ca.comment is None:
            node.ca.comment = [None, None]  # the representer emits `end` only beside a comment
        node.ca.end = [CommentToken(text, CommentMark(0))]
    else:
        node.ca.items[next(reversed(node))] = [None, None, CommentToken("\n" + text, CommentMark(0)), None]


def append(seq: Any, item: Any) -> None:
    trailing = _detach_trailing(seq) if _is_block(seq) else ""
    seq.append(item)
    if trailing:
        _attach_trailing(seq, trailing)


def put(node: Any, key: Any, value: Any) -> None:
    trailing = _detach_trailing(node) if _is_block(node) else ""
    node[key] = value
    if trailing:
        _attach_trailing(node, trailing)


def dump(doc: Any) -> str:
    out = io.StringIO()
    round_trip().dump(doc, out)
    return out.getvalue()


def _stage(path: Path, data: bytes, mode_from: Path) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode_from.stat().st_mode & 0o777)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def commit(texts: Mapping[Path, str], mode_from: Path) -> None:
    """Write every file or none: all go to temporary files beside them first, and are renamed
    only then; a failed rename puts back the files renamed before it. New files take the mode
    of `mode_from`."""
    old = {path: path.read_bytes() if path.exists() else None for path in texts}
    staged: dict[Path, str] = {}
    renamed: list[Path] = []
    try:
        for path, text in texts.items():
            staged[path] = _stage(path, text.encode(), path if old[path] is not None else mode_from)
        for path, tmp in staged.items():
            os.replace(tmp, path)
            renamed.append(path)
    except BaseException as exc:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
        left = _put_back(renamed, old)
        if isinstance(exc, OSError):
            raise OSError(f"{exc}; {left or 'nothing changed'}") from exc
        raise


def _put_back(paths: list[Path], old: Mapping[Path, bytes | None]) -> str:
    failed = []
    for path in reversed(paths):
        try:
            before = old[path]
            if before is None:
                path.unlink()
            else:
                os.replace(_stage(path, before, path), path)
        except OSError as exc:
            failed.append(f"{path.name} ({exc})")
    return f"could not put back {', '.join(failed)}: check them" if failed else ""
