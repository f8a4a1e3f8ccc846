"""The comparison table of paper Table 1 / Table 5 from evaluation JSON files: ``genrl compare RUNS... --out t.md``.

Input schema — one JSON object per run (``genrl baseline`` writes ``OUT/eval.json``; the GenRL behavior stage
writes the same kind of file). Only these keys are read:

=====================  ==================  =====================================================================
key                    type                meaning
=====================  ==================  =====================================================================
``task``               str                 task id, e.g. ``"walker_walk"`` (required)
``method`` / ``algo``  str                 ``"iql"``, ``"td3bc"``, ``"td3"``, ``"genrl"`` or any other name
                                           (required; ``method`` wins when both are present)
``reward``             str | null          ``"image"`` / ``"video"`` for the baselines; absent or null for
                                           methods without a reward kind (GenRL)
``seed``               int                 training seed (optional; a file without one counts as its own seed)
``mean_normalized``    float               mean normalized score of the evaluation episodes (required; files
                                           where it is null, tasks without reference scores, are skipped)
``max_steps``          int | null          optional; not null = a capped smoke-test evaluation, marked ``†``
=====================  ==================  =====================================================================

The column of a run is ``f"{method}-{reward}"`` (or ``method`` without a reward kind): ``iql-image``, ...,
``genrl`` (:data:`genrl.evaluation.paper_results.COLUMNS`); other methods get extra columns after those.

Aggregation: a cell is the mean over seeds of ``mean_normalized`` ± its standard error ``std(ddof=1) / sqrt(n)``
(a single seed shows ``(n=1)``). Rows are the tasks grouped by domain (paper Table 5), then one row per domain
(paper Table 1) and an ``overall`` row (mean over tasks, as the paper's): their value is the mean of the task
means of that column, their standard error ``sqrt(sum se_i^2) / n_tasks``. Beside each of our cells the paper's
number is printed in brackets: Table 5 for tasks; for a domain/overall row, the mean of Table 5 over the same tasks
(Table 1's value when every task of the paper's domain is present; Table 5's overall ± s.e. when all 14 are),
and nothing when some of the row's tasks are not in the paper (the averages would cover other task sets).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from genrl.evaluation.paper_results import COLUMNS, DOMAIN_ORDER, LABELS, TABLE5, TABLE5_OVERALL


@dataclass
class RunResult:
    """One evaluation file: ``path``, ``task``, ``column`` (e.g. ``"iql-video"``), ``seed`` (or None),
    ``score`` (mean normalized score), ``capped`` (evaluated with ``max_steps``)."""

    path: str
    task: str
    column: str
    seed: int | None
    score: float
    capped: bool = False


@dataclass
class Cell:
    """Aggregate of one table cell: ``mean``, ``stderr`` (None for one value), ``n`` values, ``capped``."""

    mean: float
    stderr: float | None
    n: int
    capped: bool = False


@dataclass
class Row:
    """One table row: ``kind`` (``"task"``, ``"domain"``, ``"overall"``), ``domain``, ``name`` (task id, domain,
    or ``"overall"``), ``cells`` (column -> :class:`Cell`), ``paper`` (column -> ``(mean, stderr or None)``)."""

    kind: str
    domain: str
    name: str
    cells: dict[str, Cell] = field(default_factory=dict)
    paper: dict[str, tuple[float, float | None]] = field(default_factory=dict)


def column_of(method: str, reward: str | None) -> str:
    """``("iql", "video") -> "iql-video"``; ``("genrl", None) -> "genrl"``; ``"TD3+BC"`` is spelled ``td3bc``."""
    method = str(method).strip().lower().replace("+", "")
    return f"{method}-{str(reward).strip().lower()}" if reward else method


def load_eval(path: str | os.PathLike) -> RunResult | None:
    """Read one evaluation JSON (schema in the module docstring); None when ``mean_normalized`` is null.

    Raises:
        ValueError: unreadable JSON, or a missing/ill-typed required key (the message names the file and key).
    """
    path = Path(path)
    try:
        rec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the evaluation JSON ({err})") from err
    if not isinstance(rec, dict):
        raise ValueError(f"{path}: expected a JSON object")
    method = rec.get("method") or rec.get("algo")
    if not isinstance(rec.get("task"), str) or not method:
        raise ValueError(f"{path}: needs 'task' (str) and 'method' or 'algo' (str); has keys {sorted(rec)}")
    if "mean_normalized" not in rec:
        raise ValueError(f"{path}: no 'mean_normalized' key (the mean normalized score of the evaluation)")
    score = rec["mean_normalized"]
    if score is None:
        return None
    if not isinstance(score, (int, float)) or not math.isfinite(score):
        raise ValueError(f"{path}: 'mean_normalized' must be a finite number, got {score!r}")
    seed = rec.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ValueError(f"{path}: 'seed' must be an integer, got {seed!r}")
    return RunResult(str(path), rec["task"], column_of(method, rec.get("reward")), seed, float(score),
                     rec.get("max_steps") is not None)


def find_eval_files(paths: Iterable[str | os.PathLike], name: str = "eval.json") -> list[Path]:
    """Files given directly, plus every ``name`` found recursively under the folders given (sorted).

    Raises:
        FileNotFoundError: a path that does not exist, or a folder without any ``name``.
    """
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            hits = sorted(p.rglob(name))
            if not hits:
                raise FileNotFoundError(f"{p}: no {name} below this folder")
            found += hits
        else:
            raise FileNotFoundError(f"{p} does not exist")
    return list(dict.fromkeys(found))


def collect(paths: Iterable[str | os.PathLike]) -> list[RunResult]:
    """Load every evaluation file of :func:`find_eval_files` (files with a null score are skipped).

    Raises:
        ValueError: a bad file, or two files for the same task, column and seed (both are named).
    """
    results, seen = [], {}
    for path in find_eval_files(paths):
        res = load_eval(path)
        if res is None:
            continue
        if res.seed is not None:
            key = (res.task, res.column, res.seed)
            if key in seen:
                raise ValueError(f"two results for task {res.task}, {res.column}, seed {res.seed}: {seen[key]} and "
                                 f"{path}; pass only one of them")
            seen[key] = path
        results.append(res)
    return results


def mean_stderr(values: Sequence[float]) -> tuple[float, float | None]:
    """``(mean, std(ddof=1) / sqrt(n))``; the standard error is None for a single value."""
    arr = np.asarray(values, np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else None)


def aggregate(results: Iterable[RunResult]) -> dict[tuple[str, str], Cell]:
    """``{(task, column): Cell}``: mean ± standard error over the seeds of each task and column."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.column), []).append(r)
    out = {}
    for key, runs in groups.items():
        mean, se = mean_stderr([r.score for r in runs])
        out[key] = Cell(mean, se, len(runs), any(r.capped for r in runs))
    return out


def _combine(cells: list[Cell]) -> Cell:
    mean = float(np.mean([c.mean for c in cells]))
    ses = [c.stderr for c in cells]
    se = None if any(s is None for s in ses) else math.sqrt(sum(s * s for s in ses)) / len(cells)
    return Cell(mean, se, min(c.n for c in cells), any(c.capped for c in cells))


def _paper_aggregate(tasks: list[str], column: str, overall: bool) -> tuple[float, float | None] | None:
    """Paper value over exactly ``tasks`` (None when the paper lacks any of them: another task set)."""
    if not tasks or any(column not in TABLE5.get(t, {}) for t in tasks):
        return None
    vals = [TABLE5[t][column] for t in tasks]
    if overall and len(vals) == len(TABLE5):
        return TABLE5_OVERALL[column]
    return float(np.mean([v[0] for v in vals])), None


def _task_order(task: str) -> tuple:
    domain = task.split("_")[0]
    d = DOMAIN_ORDER.index(domain) if domain in DOMAIN_ORDER else len(DOMAIN_ORDER)
    paper_tasks = list(TABLE5)
    return (d, domain, paper_tasks.index(task) if task in TABLE5 else len(paper_tasks), task)


def build_rows(cells: dict[tuple[str, str], Cell], columns: Sequence[str]) -> list[Row]:
    """Per domain: its task rows, then its summary row; last the ``overall`` row (see the module docstring).

    A summary row's paper value is given only when the paper has every task it averages (same task set)."""
    tasks = sorted({t for t, _ in cells}, key=_task_order)
    rows: list[Row] = []
    domains: dict[str, list[str]] = {}
    for t in tasks:
        domains.setdefault(t.split("_")[0], []).append(t)

    def summary(kind: str, domain: str, name: str, ts: list[str]) -> Row:
        row = Row(kind, domain, name)
        for col in columns:
            have = [t for t in ts if (t, col) in cells]
            if have:
                row.cells[col] = _combine([cells[(t, col)] for t in have])
                paper = _paper_aggregate(have, col, kind == "overall")
                if paper is not None:
                    row.paper[col] = paper
        return row

    for domain, dtasks in domains.items():
        for t in dtasks:
            row = Row("task", domain, t)
            for col in columns:
                if (t, col) in cells:
                    row.cells[col] = cells[(t, col)]
                if t in TABLE5 and col in TABLE5[t]:
                    row.paper[col] = TABLE5[t][col]
            rows.append(row)
        rows.append(summary("domain", domain, domain, dtasks))
    rows.append(summary("overall", "", "overall", tasks))
    return rows


def _fmt(mean: float, se: float | None, n: int | None = None) -> str:
    if se is None:
        return f"{mean:.2f}" + (f" (n={n})" if n is not None else "")
    return f"{mean:.2f} ± {se:.2f}"


def _cell_text(row: Row, col: str) -> str:
    c = row.cells.get(col)
    ours = "–" if c is None else _fmt(c.mean, c.stderr, c.n if c.n == 1 else None) + ("†" if c.capped else "")
    if col in row.paper:
        ours += f" [{_fmt(*row.paper[col])}]"
    return ours


def _row_name(row: Row, n_tasks: dict[str, int]) -> str:
    if row.kind == "task":
        return row.name
    if row.kind == "domain":
        return f"**{row.name}** ({n_tasks[row.domain]} task{'s' * (n_tasks[row.domain] != 1)})"
    return "**overall**"


def to_markdown(rows: list[Row], columns: Sequence[str]) -> str:
    """Markdown table (one line per row) with a legend."""
    n_tasks: dict[str, int] = {}
    for r in rows:
        if r.kind == "task":
            n_tasks[r.domain] = n_tasks.get(r.domain, 0) + 1
    head = ["task"] + [LABELS.get(c, c) for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([_row_name(r, n_tasks)] + [_cell_text(r, c) for c in columns]) + " |")
    lines += ["", "Normalized scores (0 = random, 1 = expert): mean ± standard error over seeds (n = seeds when "
              "only one). [brackets]: the paper (Table 5 per task; domain rows: mean of Table 5 over the same "
              "tasks = Table 1 when all of them are present; 500k steps, 20 episodes, 5 seeds, SigLIP-B / "
              "InternVideo2 rewards). Domain/overall rows: mean over the row's tasks that have a value in the column, "
              "s.e. sqrt(sum se²)/n (shown as n=1 when a task has a single seed)."]
    if any(c.capped for r in rows for c in r.cells.values()):
        lines.append("† evaluated with capped episodes (max_steps): not comparable with the paper.")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row], columns: Sequence[str]) -> str:
    """Long-format CSV: ``row_kind, domain, name, column, label, mean, stderr, seeds, capped, paper_mean,
    paper_stderr`` (one line per row and column with a value of ours or of the paper)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row_kind", "domain", "name", "column", "label", "mean", "stderr", "seeds", "capped",
                "paper_mean", "paper_stderr"])
    for r in rows:
        for col in columns:
            c, p = r.cells.get(col), r.paper.get(col)
            if c is None and p is None:
                continue
            num = lambda x: "" if x is None else f"{x:.6g}"  # noqa: E731
            w.writerow([r.kind, r.domain, r.name, col, LABELS.get(col, col),
                        num(c and c.mean), num(c and c.stderr), "" if c is None else c.n,
                        "" if c is None else int(c.capped), num(p and p[0]), num(p and p[1])])
    return buf.getvalue()


def compare(paths: Iterable[str | os.PathLike]) -> tuple[str, str, list[Row]]:
    """Collect, aggregate and format: returns ``(markdown, csv, rows)``.

    Columns: the paper's seven (:data:`COLUMNS`) and then any other column found in the results.

    Raises:
        FileNotFoundError / ValueError: see :func:`collect`; ValueError when no usable result was found.
    """
    results = collect(paths)
    if not results:
        raise ValueError("no evaluation results with a normalized score found")
    extra = sorted({r.column for r in results} - set(COLUMNS))
    columns = list(COLUMNS) + extra
    rows = build_rows(aggregate(results), columns)
    return to_markdown(rows, columns), to_csv(rows, columns), rows


__all__ = ["RunResult", "Cell", "Row", "column_of", "load_eval", "find_eval_files", "collect", "mean_stderr",
           "aggregate", "build_rows", "to_markdown", "to_csv", "compare"]
