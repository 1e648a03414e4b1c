"""Cobertura XML read into a :class:`~.coverage_reports.Report`: always parsed whole by
expat; a large report counted by byte scans when its root totals are consistent and
nothing could fool the scans, else by expat callbacks.

Imported by :func:`.coverage_reports.read_report` only when it reads a Cobertura report.
Every failure is a :class:`CheckFailed` saying why the report cannot be used.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .base import CheckFailed
from .coverage_reports import Report, relative

if TYPE_CHECKING:
    import mmap
    from xml.parsers.expat import XMLParserType

__all__ = ["read_cobertura"]

_ROOT_TAG = re.compile(rb"<coverage\b([^>]*)>")
_ATTR = re.compile(rb'([\w:-]+)\s*=\s*"([^"]*)"')
_SOURCE = re.compile(rb"<source>([^<]*)</source>")
_CLASS_FILE = re.compile(rb'<class\b[^>]*?\bfilename="([^"]*)"')
# a hits attribute the byte counts cannot read: not a plain double-quoted 0 or 1, 2, ...
_ODD_HITS = re.compile(rb'hits\s*=\s*(?!"(?:0|[1-9][0-9]*)")')
_COUNT = re.compile(r"\s*[0-9]+\s*")


def _malformed(path: Path, what: str) -> CheckFailed:
    return CheckFailed(f"coverage report {path}: malformed Cobertura: {what}")


def _root_totals(attrs: dict[str, str], path: Path) -> tuple[int, int] | None:
    """The root's ``lines-valid`` and ``lines-covered`` (None unless both are stated), checked:
    counts, covered <= valid, and ``line-rate`` a fraction 0-1."""
    rate = attrs.get("line-rate")
    if rate is not None:
        try:
            ok = 0.0 <= float(rate) <= 1.0
        except ValueError:
            ok = False
        if not ok:
            raise _malformed(path, f"line-rate={rate!r}, expected a fraction 0-1")
    if "lines-valid" not in attrs or "lines-covered" not in attrs:
        return None
    for key in ("lines-valid", "lines-covered"):
        if not _COUNT.fullmatch(attrs[key]):
            raise _malformed(path, f"{key}={attrs[key]!r}, expected a count")
    total, covered = int(attrs["lines-valid"]), int(attrs["lines-covered"])
    if covered > total:
        raise _malformed(path, f"lines-covered={covered} is more than lines-valid={total}")
    # line-rate is covered/valid, rounded (coverage.py: 4 decimals; other tools 1 or 2)
    if rate is not None and total and abs(float(rate) - covered / total) > 0.051:
        raise _malformed(
            path, f"line-rate={rate!r} does not match lines-covered/lines-valid = {covered}/{total}"
        )
    return total, covered


def _well_formed(path: Path) -> tuple[dict[str, str], int]:
    """Parse the whole document with expat, calling Python only for the root element: the
    root's attributes and byte offset; CheckFailed when it is not well-formed XML."""
    from xml.parsers import expat

    parser = expat.ParserCreate()
    root: list[tuple[str, dict[str, str], int]] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        root.append((tag, attrs, parser.CurrentByteIndex))
        parser.StartElementHandler = None  # the other elements cost no Python call

    parser.StartElementHandler = start
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise CheckFailed(f"coverage report {path} is not valid XML: {exc}") from None
    if root[0][0] != "coverage":
        raise CheckFailed(
            f"coverage report {path}: expected Cobertura <coverage>, found <{root[0][0]}>"
        )
    return root[0][1], root[0][2]


def _scannable(data: mmap.mmap, at: int) -> bool:
    """Nothing the byte scans could misread: no declarations before the root (entities,
    attribute defaults), no CDATA or processing instruction after it, comments without
    markup or hits in them (coverage.py writes two), every hits value a plain number."""
    if data.find(b"<!ENTITY", 0, at) != -1 or data.find(b"<!ATTLIST", 0, at) != -1:
        return False
    if data.find(b"<![CDATA[", at) != -1 or data.find(b"<?", at) != -1:
        return False
    if _ODD_HITS.search(data, at):
        return False
    comment = data.find(b"<!--", at)
    for _ in range(100):
        if comment == -1:
            return True
        end = data.find(b"-->", comment)
        body = data[comment + 4 : end]
        if end == -1 or b"<" in body or b"hits" in body:
            return False
        comment = data.find(b"<!--", end)
    return False


def _cobertura_totals(path: Path, rootdir: Path) -> Report | None:
    """The totals a Cobertura root states (``lines-valid``, ``lines-covered``) and the files
    its classes name (for staleness), read with C-speed scans instead of a parse of every
    ``<line>``: seconds less on a 100 MB report. The document is still parsed whole by expat
    (well-formedness) but without a Python call per element. Each class's lines are counted
    by byte search too, and the sums must equal the root's totals. None
    when the root states no totals or the byte scans could be fooled (comments, CDATA or
    entities after the root, a hits value other than a plain number): the caller parses."""
    import html
    import mmap

    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        root = _ROOT_TAG.search(data, 0, 64 * 1024)
        if root is None:
            return None
        attrs = {k.decode(): v.decode() for k, v in _ATTR.findall(root[1])}
        if "lines-valid" not in attrs or "lines-covered" not in attrs:
            return None
        attrs, at = _well_formed(path)
        totals = _root_totals(attrs, path)
        if totals is None or not _scannable(data, at):
            return None
        report = Report("cobertura")
        report.total, report.covered = totals
        roots = []
        for raw in _SOURCE.findall(data):
            src = Path(html.unescape(raw.decode(errors="replace")).strip())
            roots.append(src if src.is_absolute() else rootdir / src)
        # The lines are counted even when only the total is asked for: root totals that the
        # <line> elements contradict must not vouch for the report.
        classes = list(_CLASS_FILE.finditer(data))
        for n, match in enumerate(classes):
            end = classes[n + 1].start() if n + 1 < len(classes) else len(data)
            segment = data[match.end() : end]
            methods = segment.find(b"<methods>")
            if methods != -1:  # a method's <lines> repeat the class's (<methods/> has none)
                closing = segment.find(b"</methods>", methods)
                if closing == -1:
                    return None
                segment = segment[:methods] + segment[closing:]
            lines = segment.count(b"<line ")
            uncovered = segment.count(b'hits="0"')
            if segment.count(b"hits=") != lines:
                return None  # a <line> without hits (or hits elsewhere): parse the XML
            name = _resolve(
                html.unescape(match[1].decode(errors="replace")), roots, rootdir, report
            )
            counts = report.files.setdefault(name, [0, 0])
            counts[0] += lines
            counts[1] += lines - uncovered
        counted = [sum(v[i] for v in report.files.values()) for i in (0, 1)]
        if counted != [report.total, report.covered]:
            return None  # the byte counts do not add up: parse the XML properly
    return report


def read_cobertura(path: Path, rootdir: Path) -> Report:
    """Stream the report with expat's C parser: one small callback per element and no
    element tree at all, so a 100 MB report costs seconds and a few MiB. (expat does not
    fetch external entities and refuses entity-expansion bombs.) A ``<line>`` is covered
    when its ``hits`` is an integer > 0; a hits value that is not an integer is malformed."""
    from xml.parsers import expat

    totals = _cobertura_totals(path, rootdir)
    if totals is not None:
        return totals
    parser = expat.ParserCreate()
    reader = _CoberturaReader(path, rootdir, parser)
    parser.buffer_text = True
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.chars
    try:
        with path.open("rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as exc:
        raise CheckFailed(f"coverage report {path} is not valid XML: {exc}") from None
    if not reader.root_attrs:
        raise CheckFailed(f"coverage report {path} is not valid XML: no root element")
    report = reader.report
    counted = sum(v[0] for v in report.files.values()), sum(v[1] for v in report.files.values())
    stated = _root_totals(reader.root_attrs, path)
    if stated is not None and stated != counted:
        raise _malformed(
            path,
            f"the root states {stated[1]} of {stated[0]} lines covered, its <line> elements "
            f"{counted[1]} of {counted[0]}",
        )
    report.total, report.covered = counted
    return report


class _CoberturaReader:
    """expat's callbacks for one Cobertura report: counts each ``<class>``'s ``<line>``
    elements into ``report.files`` (a method's ``<lines>`` repeat its class's and are not
    counted) and collects the ``<source>`` roots file names are resolved against."""

    def __init__(self, path: Path, rootdir: Path, parser: XMLParserType) -> None:
        self.path, self.rootdir, self.parser = path, rootdir, parser
        self.report = Report("cobertura")
        self.roots: list[Path] = []
        self.root_attrs: dict[str, str] = {}
        self.depth = 0
        self.current: list[int] | None = None  # the [lines, covered] of the open <class>
        self.in_lines = self.in_methods = False
        self.source_text: list[str] | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if tag == "line":
            self._line(attrs.get("hits", "0"))
        elif tag == "class":
            name = _resolve(attrs.get("filename", ""), self.roots, self.rootdir, self.report)
            self.current = self.report.files.setdefault(name, [0, 0])
        elif tag == "lines":
            self.in_lines = self.current is not None and not self.in_methods
        elif tag == "methods":
            self.in_methods = True
        elif tag == "source":
            self.source_text = []
        elif self.depth == 1:
            self._root(tag, attrs)

    def _line(self, hits: str) -> None:
        try:
            covered = int(hits) > 0
        except ValueError:
            raise _malformed(
                self.path,
                f"line {self.parser.CurrentLineNumber}: hits={hits!r}, expected an integer",
            ) from None
        if self.current is not None and self.in_lines:
            self.current[0] += 1
            self.current[1] += covered

    def _root(self, tag: str, attrs: dict[str, str]) -> None:
        if tag != "coverage":
            raise CheckFailed(
                f"coverage report {self.path}: expected Cobertura <coverage>, found <{tag}>"
            )
        self.root_attrs.update(attrs)
        self.root_attrs["__seen__"] = "1"

    def end(self, tag: str) -> None:
        self.depth -= 1
        if tag == "lines":
            self.in_lines = False
        elif tag == "methods":
            self.in_methods = False
        elif tag == "class":
            self.current, self.in_lines = None, False
        elif tag == "source" and self.source_text is not None:
            text = "".join(self.source_text).strip()
            if text:
                src = Path(text)
                self.roots.append(src if src.is_absolute() else self.rootdir / src)
            self.source_text = None

    def chars(self, data: str) -> None:
        if self.source_text is not None:
            self.source_text.append(data)


def _resolve(name: str, roots: list[Path], rootdir: Path, report: Report) -> str:
    candidates = [r / name for r in roots] + [
        Path(name) if Path(name).is_absolute() else rootdir / name
    ]
    for c in candidates:
        if c.is_file():
            report.sources.append(c)
            return relative(c, rootdir)
    return name
