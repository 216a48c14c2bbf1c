"""Load template YAML files into ``Template`` objects, with file and line in every problem.

Two modes, as in invoice2data's loader:
* ``load_templates(dirs, strict=False)`` (watching, batch): a broken file is skipped
  with a warning problem, the other templates keep working;
* ``check_templates(dirs)`` (``faxflow templates check``): every problem is reported
  and the command exits non-zero.

Shipped templates live in ``templates/forms/``; user templates in the workspace's
``templates/`` folder. A user template with the same ``name`` replaces the shipped one.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from faxflow.templates.errors import TemplateError
from faxflow.templates.model import (
    CANONICAL,
    CANONICAL_TYPES,
    FIELD_TYPES,
    NAME_SYNONYMS,
    HINTS,
    KINDS,
    Anchor,
    FieldSpec,
    TableSpec,
    Template,
    TemplateProblem,
    TemplateSet,
)

SHIPPED_DIR = Path(__file__).parent / "forms"
NAME_RE = re.compile(r"^[a-z0-9_]+$")
KNOWN_CHECKS = ("amount", "due_date", "total", "balance")
TOP_KEYS = {"name", "title", "kind", "reference", "match", "fields", "tables", "checks",
            "year_from", "confidence_threshold"}
FIELD_KEYS = {"box", "x", "type", "hint", "pattern", "allowed", "required", "lang", "min", "max",
              "multiline"}


class _Map(dict):
    """A dict that remembers the YAML line (1-based) of each key and of itself."""

    line: int = 0
    key_lines: dict


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    m = _Map()
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in m:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[key] = key_node.start_mark.line + 1
    return m


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Problems:
    def __init__(self, path: Path):
        self.path = path
        self.items: list[TemplateProblem] = []

    def error(self, line: int, message: str) -> None:
        self.items.append(TemplateProblem(self.path, line, message, "error"))

    def warning(self, line: int, message: str) -> None:
        self.items.append(TemplateProblem(self.path, line, message, "warning"))

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.items)


def _line(m: Any, key: str | None = None) -> int:
    if isinstance(m, _Map):
        if key is not None and key in m.key_lines:
            return m.key_lines[key]
        return m.line
    return 0


def _box(value: Any, n: int, where: str, line: int, probs: _Problems) -> tuple[int, ...] | None:
    if (not isinstance(value, (list, tuple)) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        shape = "[x0, y0, x1, y1]" if n == 4 else "[x0, x1]"
        probs.error(line, f"{where}: expected {n} numbers {shape}, got {value!r}")
        return None
    vals = tuple(int(round(v)) for v in value)
    if n == 4 and (vals[2] <= vals[0] or vals[3] <= vals[1]):
        probs.error(line, f"{where}: box {list(vals)} has x1 <= x0 or y1 <= y0 "
                          "(write the top-left corner first, then the bottom-right)")
        return None
    if n == 2 and vals[1] <= vals[0]:
        probs.error(line, f"{where}: x range {list(vals)} has x1 <= x0")
        return None
    if any(v < 0 for v in vals):
        probs.error(line, f"{where}: negative coordinate in {list(vals)}")
        return None
    return vals


def _field(name: str, raw: Any, line: int, probs: _Problems, *, column: bool,
           table_box: tuple[int, int, int, int] | None = None) -> FieldSpec | None:
    where = ("column " if column else "field ") + repr(name)
    if not isinstance(raw, dict):
        probs.error(line, f"{where}: expected a mapping like {{box: [...], type: text}}, got {raw!r}")
        return None
    for key in raw:
        if key not in FIELD_KEYS:
            probs.error(_line(raw, key), f"{where}: unknown key {key!r} "
                                         f"(known: {', '.join(sorted(FIELD_KEYS))})")
    ftype = raw.get("type", "text")
    if ftype not in FIELD_TYPES:
        probs.error(_line(raw, "type"), f"{where}: type {ftype!r} is not one of {', '.join(FIELD_TYPES)}")
        ftype = "text"
    hint = raw.get("hint", "printed")
    if hint not in HINTS:
        probs.error(_line(raw, "hint"), f"{where}: hint {hint!r} is not one of {', '.join(HINTS)}")
        hint = "printed"
    if column:
        if "x" not in raw:
            probs.error(line, f"{where}: missing 'x: [x0, x1]' (the column's left and right edge)")
            return None
        xr = _box(raw["x"], 2, where, _line(raw, "x"), probs)
        if xr is None:
            return None
        assert table_box is not None
        if xr[0] < table_box[0] - 2 or xr[1] > table_box[2] + 2:
            probs.error(_line(raw, "x"), f"{where}: x range {list(xr)} lies outside the table box "
                                         f"{list(table_box)}")
        box = (xr[0], table_box[1], xr[1], table_box[3])
    else:
        if "box" not in raw:
            probs.error(line, f"{where}: missing 'box: [x0, y0, x1, y1]'")
            return None
        b = _box(raw["box"], 4, where, _line(raw, "box"), probs)
        if b is None:
            return None
        box = b
    pattern = raw.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            probs.error(_line(raw, "pattern"), f"{where}: pattern {pattern!r} is not a valid regular "
                                               f"expression: {exc}")
            pattern = None
    allowed = raw.get("allowed", ())
    if allowed and not isinstance(allowed, (list, tuple)):
        probs.error(_line(raw, "allowed"), f"{where}: 'allowed' must be a list, got {allowed!r}")
        allowed = ()
    for key in ("min", "max"):
        if key in raw and not isinstance(raw[key], (int, float)):
            probs.error(_line(raw, key), f"{where}: {key} must be a number")
    return FieldSpec(
        name=name,
        type=ftype,
        box=box,  # type: ignore[arg-type]
        hint=hint,
        pattern=str(pattern) if pattern is not None else None,
        allowed=tuple(str(a) for a in (allowed or ())),
        required=bool(raw.get("required", False)),
        lang=raw.get("lang"),
        min=raw.get("min") if isinstance(raw.get("min"), (int, float)) else None,
        max=raw.get("max") if isinstance(raw.get("max"), (int, float)) else None,
        multiline=bool(raw.get("multiline", False)),
        line=line,
    )


# Edges measured by hand are a few pixels off: a column that overlaps its neighbour or
# pokes out of the table box by up to this much (reference mm) is a warning and is
# put right (the shared edge at the middle, the table box widened); more is an error.
SLOP_MM = 2.0


def _table(name: str, raw: Any, line: int, probs: _Problems, dpi: float = 200.0) -> TableSpec | None:
    where = f"table {name!r}"
    slop = int(round(SLOP_MM / 25.4 * dpi))
    if not isinstance(raw, dict):
        probs.error(line, f"{where}: expected a mapping with box, rows and columns")
        return None
    for key in raw:
        if key not in {"box", "rows", "columns", "key"}:
            probs.error(_line(raw, key), f"{where}: unknown key {key!r} (known: box, rows, columns, key)")
    if "box" not in raw:
        probs.error(line, f"{where}: missing 'box: [x0, y0, x1, y1]' (the table body)")
        return None
    box = _box(raw["box"], 4, where, _line(raw, "box"), probs)
    if box is None:
        return None
    rows = raw.get("rows")
    pitch = count = None
    rows_from = "pitch"
    if not isinstance(rows, dict):
        probs.error(_line(raw, "rows") or line,
                    f"{where}: missing 'rows: {{pitch: P, count: N}}' or 'rows: {{from: ruling}}'")
        return None
    if rows.get("from") == "ruling":
        rows_from = "ruling"
        count = rows.get("count")
        pitch = rows.get("pitch")  # optional: the blank form's pitch, when faint lines hide it
        if pitch is not None and (not isinstance(pitch, (int, float)) or pitch <= 0):
            probs.error(_line(rows, "pitch") or _line(rows), f"{where}: rows.pitch must be a positive "
                                                             f"number of pixels, got {pitch!r}")
            return None
    elif "from" in rows:
        probs.error(_line(rows, "from"), f"{where}: rows.from must be 'ruling', got {rows['from']!r}")
        return None
    else:
        pitch = rows.get("pitch")
        count = rows.get("count")
        if not isinstance(pitch, (int, float)) or pitch <= 0:
            probs.error(_line(rows, "pitch") or _line(rows), f"{where}: rows.pitch must be a positive "
                                                             f"number of pixels, got {pitch!r}")
            return None
        if count is None:
            count = int((box[3] - box[1]) // pitch)
        if not isinstance(count, int) or count <= 0:
            probs.error(_line(rows, "count"), f"{where}: rows.count must be a positive whole number")
            return None
        end = box[1] + pitch * count
        if end > box[3] + max(4, pitch * 0.5):
            probs.error(_line(rows, "count"),
                        f"{where}: {count} rows of {pitch} px end at y={end:.0f}, "
                        f"below the table box bottom y={box[3]}")
        elif end > box[3] + 4:  # a pitch a little too large: rows snap to the ruling anyway
            probs.warning(_line(rows, "pitch") or _line(rows),
                          f"{where}: {count} rows of {pitch} px end at y={end:.0f}, below the table "
                          f"box bottom y={box[3]}; the box is taken down to y={end:.0f} (check the "
                          "pitch with 'faxflow templates preview')")
            box = (box[0], box[1], box[2], int(round(end)))
    cols_raw = raw.get("columns")
    if not isinstance(cols_raw, dict) or not cols_raw:
        probs.error(_line(raw, "columns") or line, f"{where}: needs 'columns:' with at least one column")
        return None
    wide = _widened(box, cols_raw, slop)
    if wide != box:
        probs.warning(_line(raw, "box"), f"{where}: columns reach up to {slop} px outside the table "
                                         f"box {list(box)}; the box is widened to {list(wide)}")
        box = wide
    columns = []
    for cname, craw in cols_raw.items():
        spec = _field(str(cname), craw, _line(cols_raw, cname), probs, column=True, table_box=box)
        if spec is not None:
            columns.append(spec)
    columns = _shared_edges(columns, slop, where, probs)
    key = raw.get("key")
    if key is not None and key not in cols_raw:
        probs.error(_line(raw, "key"), f"{where}: key column {key!r} is not one of the columns")
        key = None
    return TableSpec(name=name, box=box, columns=tuple(columns), row_pitch=pitch,  # type: ignore[arg-type]
                     row_count=count, rows_from=rows_from, key_column=key, line=line)


def _widened(box: tuple[int, int, int, int], cols_raw: dict, slop: int) -> tuple[int, int, int, int]:
    """The table box widened to the columns that poke out of it by at most ``slop``."""
    x0, y0, x1, y1 = box
    for craw in cols_raw.values():
        xr = craw.get("x") if isinstance(craw, dict) else None
        if (isinstance(xr, (list, tuple)) and len(xr) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xr)):
            a, b = int(round(xr[0])), int(round(xr[1]))
            if box[0] - slop <= a < x0:
                x0 = a
            if x1 < b <= box[2] + slop:
                x1 = b
    return (x0, y0, x1, y1)


def _shared_edges(columns: list[FieldSpec], slop: int, where: str, probs: _Problems) -> list[FieldSpec]:
    """Neighbouring columns that overlap by at most ``slop`` share the edge at the middle
    of the overlap (a warning); a larger overlap is an error."""
    ordered = sorted(columns, key=lambda c: c.box[0])
    fixed = {c.name: c for c in columns}
    for a, b in zip(ordered, ordered[1:]):
        a, b = fixed[a.name], fixed[b.name]
        over = a.box[2] - b.box[0]
        if over <= 2:
            continue
        if over > slop or b.box[2] - b.box[0] <= 2 * over or a.box[2] - a.box[0] <= 2 * over:
            probs.error(b.line, f"{where}: column {b.name!r} x range overlaps column {a.name!r} by "
                                f"{over} px (more than {slop} px is no measuring slip): give both the x "
                                "of the ruling line between them")
            continue
        mid = (a.box[2] + b.box[0]) // 2
        probs.warning(b.line, f"{where}: column {b.name!r} overlaps column {a.name!r} by {over} px; "
                              f"they share the edge at x={mid}")
        fixed[a.name] = replace(a, box=(a.box[0], a.box[1], mid, a.box[3]))
        fixed[b.name] = replace(b, box=(mid, b.box[1], b.box[2], b.box[3]))
    return [fixed[c.name] for c in columns]


def _name_warnings(kind: str, fields: list[FieldSpec], tables: list[TableSpec], probs: _Problems) -> None:
    """Warn about names that will not reach the CSV or whose type defeats their checks:
    ``qty`` is read and stored, but the export's quantity column stays empty and
    quantity x unit price = amount is never checked."""
    import difflib

    header, columns = CANONICAL.get(kind, ((), ()))
    for specs, known, what in ((fields, header, "field"), ([c for t in tables for c in t.columns], columns,
                                                         "column")):
        for f in specs:
            if f.name not in known:
                guess = NAME_SYNONYMS.get(f.name.lower())
                if guess not in known:
                    close = difflib.get_close_matches(f.name.lower(), known, n=1, cutoff=0.75)
                    guess = close[0] if close else None
                hint = f"; did you mean {guess!r}?" if guess else ""
                probs.warning(f.line, f"{what} {f.name!r} is read and stored but not exported: the CSV "
                                      f"takes {', '.join(known)}{hint}")
            elif f.name in CANONICAL_TYPES and f.type not in CANONICAL_TYPES[f.name]:
                want = CANONICAL_TYPES[f.name][0]
                probs.warning(f.line, f"{what} {f.name!r} has type {f.type!r}: give it 'type: {want}', "
                                      "or its value is not checked as one")


def parse_template(path: Path, *, shipped: bool = False) -> tuple[Template | None, list[TemplateProblem]]:
    """Parse one YAML file. Returns (template or None, problems)."""
    path = Path(path)
    probs = _Problems(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        probs.error(0, f"cannot read the file: {exc}")
        return None, probs.items
    try:
        raw = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc)
        probs.error(line, f"YAML syntax error: {problem} (check indentation and that ':' is "
                          "followed by a space)")
        return None, probs.items
    if not isinstance(raw, dict):
        probs.error(1, "a template must be a mapping with at least name, reference and fields/tables")
        return None, probs.items
    for key in raw:
        if key not in TOP_KEYS:
            probs.error(_line(raw, key), f"unknown key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        probs.error(_line(raw, "name") or 1, f"'name' must be lower case letters, digits and _, "
                                             f"got {name!r}")
        name = path.stem
    kind = raw.get("kind", "order")
    if kind not in KINDS:
        probs.error(_line(raw, "kind"), f"kind {kind!r} is not one of {', '.join(KINDS)}")
        kind = "order"
    ref = raw.get("reference")
    ref_path = None
    dpi = 200.0
    ref_size = None
    if not isinstance(ref, dict) or "image" not in ref:
        probs.error(_line(raw, "reference") or 1,
                    "missing 'reference: {image: FILE.png, dpi: 200}' (a scan of the blank form)")
    else:
        ref_path = (path.parent / str(ref["image"])).resolve()
        if not ref_path.is_file():
            probs.error(_line(ref, "image"), f"reference image not found: {ref_path}")
        else:
            ref_size = _image_size(ref_path)
            if ref_size is None:
                probs.error(_line(ref, "image"), f"reference image cannot be read: {ref_path}")
        d = ref.get("dpi", 200)
        if not isinstance(d, (int, float)) or not 50 <= d <= 1200:
            probs.error(_line(ref, "dpi"), f"reference dpi must be a number between 50 and 1200, got {d!r}")
        else:
            dpi = float(d)
    match = raw.get("match") or {}
    keywords: tuple[str, ...] = ()
    anchors: list[Anchor] = []
    if not isinstance(match, dict):
        probs.error(_line(raw, "match"), "'match' must be a mapping with keywords and/or anchors")
    else:
        kw = match.get("keywords", [])
        if isinstance(kw, str):
            kw = [kw]
        if not isinstance(kw, list):
            probs.error(_line(match, "keywords"), "'keywords' must be a list of words")
        else:
            keywords = tuple(str(k) for k in kw)
        for a in match.get("anchors", []) or []:
            if not isinstance(a, dict) or "text" not in a:
                probs.error(_line(match, "anchors"), "each anchor needs 'text' (and optionally 'box')")
                continue
            abox = _box(a["box"], 4, "anchor", _line(a, "box"), probs) if "box" in a else None
            anchors.append(Anchor(text=str(a["text"]), box=abox))  # type: ignore[arg-type]
        for key in match:
            if key not in ("keywords", "anchors"):
                probs.error(_line(match, key), f"match: unknown key {key!r} (known: keywords, anchors)")
    fields = []
    fraw = raw.get("fields") or {}
    if not isinstance(fraw, dict):
        probs.error(_line(raw, "fields"), "'fields' must be a mapping of field name -> {box, type}")
        fraw = {}
    for fname, f in fraw.items():
        spec = _field(str(fname), f, _line(fraw, fname), probs, column=False)
        if spec is not None:
            fields.append(spec)
    tables = []
    traw = raw.get("tables") or {}
    if not isinstance(traw, dict):
        probs.error(_line(raw, "tables"), "'tables' must be a mapping of table name -> {box, rows, columns}")
        traw = {}
    for tname, t in traw.items():
        spec_t = _table(str(tname), t, _line(traw, tname), probs, dpi)
        if spec_t is not None:
            tables.append(spec_t)
    if not fields and not tables:
        probs.error(1, "the template has no 'fields' and no 'tables': nothing would be read")
    if ref_size is not None:
        w, h = ref_size
        for spec in fields + [c for t in tables for c in t.columns]:
            x0, y0, x1, y1 = spec.box
            if x1 > w + 2 or y1 > h + 2:
                probs.error(spec.line, f"{spec.name!r}: box {list(spec.box)} reaches outside the reference "
                                       f"image ({w}x{h} px)")
    _name_warnings(kind, fields, tables, probs)
    names = [f.name for f in fields] + [t.name for t in tables]
    for dup in {n for n in names if names.count(n) > 1}:
        probs.error(1, f"name {dup!r} is used twice (fields and tables share one namespace)")
    checks = raw.get("checks", list(KNOWN_CHECKS))
    if not isinstance(checks, list) or any(c not in KNOWN_CHECKS for c in checks):
        probs.error(_line(raw, "checks"), f"checks must be a list of {', '.join(KNOWN_CHECKS)}")
        checks = list(KNOWN_CHECKS)
    year_from = raw.get("year_from")
    if year_from is not None and year_from not in fraw:
        probs.error(_line(raw, "year_from"), f"year_from {year_from!r} is not one of the fields")
    thr = raw.get("confidence_threshold")
    if thr is not None and (not isinstance(thr, (int, float)) or not 0 <= thr <= 1):
        probs.error(_line(raw, "confidence_threshold"), "confidence_threshold must be between 0 and 1")
        thr = None
    if probs.has_errors or ref_path is None:
        return None, probs.items
    return Template(
        name=name,
        path=path,
        reference_image=ref_path,
        dpi=dpi,
        title=str(raw.get("title", name)),
        kind=kind,
        keywords=keywords,
        anchors=tuple(anchors),
        fields=tuple(fields),
        tables=tuple(tables),
        checks=tuple(checks),
        year_hint=year_from,
        confidence_threshold=float(thr) if thr is not None else None,
        shipped=shipped,
    ), probs.items


def _image_size(path: Path) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any unreadable image is reported the same way
        return None


def template_files(dirs: Iterable[Path | None]) -> list[tuple[Path, bool]]:
    """(path, shipped) for the shipped folder then each given folder, sorted by name."""
    out: list[tuple[Path, bool]] = [(p, True) for p in sorted(SHIPPED_DIR.glob("*.y*ml"))]
    for d in dirs:
        if d is not None and Path(d).is_dir():
            out += [(p, False) for p in sorted(Path(d).glob("*.y*ml"))]
    return out


def load_templates(dirs: Iterable[Path | None] = (), *, strict: bool = False,
                   include_shipped: bool = True) -> TemplateSet:
    """Load shipped + user templates. A broken file is skipped with its problems listed
    (``strict=True`` raises TemplateError instead). User templates override shipped ones
    of the same name."""
    by_name: dict[str, Template] = {}
    problems: list[TemplateProblem] = []
    for path, shipped in template_files(dirs):
        if shipped and not include_shipped:
            continue
        tpl, probs = parse_template(path, shipped=shipped)
        problems += probs
        if tpl is None:
            continue
        if tpl.name in by_name and by_name[tpl.name].path != path:
            prev = by_name[tpl.name]
            if not (prev.shipped and not tpl.shipped):
                problems.append(TemplateProblem(path, 1, f"template name {tpl.name!r} already used by "
                                                         f"{prev.path}; this file is ignored", "error"))
                continue
        by_name[tpl.name] = tpl
    if strict and any(p.severity == "error" for p in problems):
        raise TemplateError("\n".join(str(p) for p in problems),
                            "テンプレートにエラーがあります: " + "; ".join(str(p) for p in problems))
    return TemplateSet(templates=tuple(by_name.values()), problems=tuple(problems))


def check_templates(dirs: Iterable[Path | None] = ()) -> TemplateSet:
    """Load everything and return all problems (for ``faxflow templates check``)."""
    return load_templates(dirs, strict=False)
