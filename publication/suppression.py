"""Confidentiality (DATA_STANDARD.md §7): primary and secondary cell suppression, and the attacker that checks it.

One table is one flow of one country and month: its cells are the slice's observations, keyed by the
breakdown dimensions, and its *relations* are what a reader knows adds up: a total and its parts along one
dimension (age along its hierarchy). Relations are taken from the figures themselves, so the attacker
knows every sum that holds, including those across the marginal tables of one flow, which meet in the
total cells they share.

Secondary suppression is the linear-programming heuristic of Kelly, Golden and Assad (1992), as refined by
Fischetti and Salazar-González (2000) and used in tau-Argus and sdcTable: for each sensitive cell and each
direction, HiGHS finds the cheapest change of the table that moves that cell by its protection level while
every published cell and every relation stays as it is; the cells that change are suppressed. Such a change
is a proof of protection, so the pattern is safe by construction; `attack` checks it all the same, by the
attacker's own linear programs (the publication gate, docs/standard.md "Confidentiality").
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import highspy
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from hmo.errors import HmoError

TOTAL = "_T"
DIMENSIONS = ("border_point", "counterpart_country", "sex", "age", "nationality")
# Per dimension, codes beyond this many are not all offered to one cell's linear program: its own code, its
# ancestors, the cheapest codes beside it and those already suppressed are (a small program per cell instead
# of one the size of the table). A program with no answer then gets the whole table.
NEIGHBOURS = 8
_EPS = 1e-6
_INF = highspy.kHighsInf


class SuppressionFailed(HmoError):
    """A table that the linear programs could not protect, or whose protection the attacker broke."""


@dataclass(frozen=True)
class Table:
    """The cells of one flow table and what adds up among them.

    `codes` numbers each dimension's codes (`labels[d][codes[i, d]]` is the code); `beside[i, d]` numbers the
    line of cells that differ from cell i only in dimension d. `relations` has a row per relation: +1 for
    each part, -1 for the total; `slack` is 0 where the parts are the whole total, else by how much they
    fall short (parts not given: a reader then knows only that they add up to no more than it).
    """
    codes: np.ndarray
    labels: tuple[np.ndarray, ...]
    beside: np.ndarray
    values: np.ndarray  # float, the true counts
    relations: sparse.csr_matrix
    slack: np.ndarray
    dimensions: tuple[str, ...] = DIMENSIONS

    @property
    def size(self) -> int:
        return len(self.values)

    def describe(self, cell: int) -> str:
        return ", ".join(f"{dim}={self.labels[d][self.codes[cell, d]]}" for d, dim in enumerate(self.dimensions))


def build_table(cells: pd.DataFrame, parents: Mapping[str, Mapping[str, str | None]] | None = None,
                dimensions: Sequence[str] = DIMENSIONS) -> Table:
    """A Table from one slice's cells (a column per dimension and `count`, every count given).

    `parents` maps a dimension to its code hierarchy (code -> parent); a dimension not in it is flat:
    every code but `_T` is a part of `_T`.
    """
    parents = parents or {}
    dims = tuple(dimensions)
    values = cells["count"].to_numpy(dtype=float)
    numbered = [pd.factorize(cells[dim].astype(str)) for dim in dims]
    codes = np.column_stack([number for number, _ in numbered]).astype(np.int64)
    labels = tuple(np.asarray(label, dtype=object) for _, label in numbered)
    beside = np.column_stack([
        pd.MultiIndex.from_arrays([codes[:, e] for e in range(len(dims)) if e != d]).factorize()[0]
        if len(dims) > 1 else np.zeros(len(values), dtype=np.int64)
        for d in range(len(dims))])
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    slack: list[float] = []
    for d, dim in enumerate(dims):
        hierarchy = parents.get(dim)
        children: dict[str, list[str]] = defaultdict(list)
        for code, parent in (hierarchy or {}).items():
            if parent:
                children[parent].append(code)
        lines: dict[int, dict[str, int]] = defaultdict(dict)
        for i, (line, code) in enumerate(zip(beside[:, d], codes[:, d])):
            lines[int(line)][labels[d][code]] = i
        for present in lines.values():
            if len(present) < 2:
                continue
            for code, total in present.items():
                if hierarchy:
                    parts = _cover(code, present, children)
                elif code == TOTAL:
                    parts = [i for c, i in present.items() if c != TOTAL]
                else:
                    continue
                if not parts:
                    continue
                short = values[total] - values[parts].sum()
                if short < -_EPS:  # parts beyond their total: not a sum a reader can rely on
                    continue
                r = len(slack)
                rows += [r] * (len(parts) + 1)
                cols += [*parts, total]
                data += [1.0] * len(parts) + [-1.0]
                slack.append(max(short, 0.0))
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(slack), len(values)))
    return Table(codes, labels, beside, values, matrix, np.array(slack, dtype=float), dims)


def _cover(code: str, present: Mapping[str, int], children: Mapping[str, list[str]]) -> list[int]:
    """The cells that make up `code`: each child given, or else that child's own cover."""
    parts: list[int] = []
    for child in children.get(code, []):
        if child in present:
            parts.append(present[child])
        else:
            parts += _cover(child, present, children)
    return parts


def primary(table: Table, threshold: float) -> np.ndarray:
    """The sensitive cells: a count from 1 to threshold - 1 (§7: 1 to 4 at the default of 5)."""
    return (table.values >= 1) & (table.values < threshold)


def protection(values: np.ndarray, threshold: float) -> np.ndarray:
    """How far up a sensitive cell must be able to move for a reader: 50 % of it, or the threshold if larger.
    Down, it must be able to reach 0 (a reader cannot tell the cell is not empty)."""
    return np.maximum(0.5 * values, threshold)


@dataclass
class _Deviation:
    """A change of the table that keeps every relation and every published cell: a proof of protection."""
    cells: np.ndarray
    amounts: np.ndarray


@dataclass
class _Protector:
    table: Table
    suppressed: np.ndarray
    columns: sparse.csc_matrix = field(init=False)
    relations_of: np.ndarray = field(init=False)  # per cell, how many relations it is in
    found: list[_Deviation] = field(default_factory=list)
    through: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    programs: int = 0

    def __post_init__(self) -> None:
        self.columns = self.table.relations.tocsc()
        self.relations_of = np.asarray(self.columns.getnnz(axis=0))

    def covered(self, cell: int, up: float, down: float) -> bool:
        """Whether changes found for other cells already move this one far enough, up and down."""
        need = {1: up, -1: down}
        for k in self.through.get(cell, []):
            deviation = self.found[k]
            at = float(deviation.amounts[deviation.cells == cell][0])
            for sign in (1.0, -1.0):  # a change taken backwards is a change too, as far as counts allow
                direction = 1 if sign * at > 0 else -1
                if need[direction] > _EPS and (
                        self._reach(deviation.cells, sign * deviation.amounts) * abs(at) >= need[direction] - _EPS):
                    need[direction] = 0.0
            if need[1] <= _EPS and need[-1] <= _EPS:
                return True
        return False

    def _reach(self, cells: np.ndarray, moved: np.ndarray) -> float:
        """How many times `moved` can be applied before a count goes below 0 or a `<=` relation breaks."""
        values = self.table.values[cells]
        falling = moved < 0
        limit = np.inf if not falling.any() else float((values[falling] / -moved[falling]).min())
        # The relations' change, from the CSC arrays directly: scipy's slicing costs more than the sum here
        # (measured: 0.58 s of a 1.45 s month of 10,000 cells).
        columns = self.columns
        starts, counts = columns.indptr[cells], np.diff(columns.indptr)[cells]
        at = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        rows, inverse = np.unique(columns.indices[at], return_inverse=True)
        change = np.bincount(inverse, weights=columns.data[at] * np.repeat(moved, counts), minlength=len(rows))
        rising = change > _EPS
        if rising.any():
            limit = min(limit, float((self.table.slack[rows[rising]] / change[rising]).min()))
        return limit

    def protect(self, cell: int, need: float, direction: int) -> None:
        candidates = self._candidates(cell)
        deviation = self._solve(cell, need, direction, candidates)
        if deviation is None and len(candidates) < self.table.size:
            deviation = self._solve(cell, need, direction, np.arange(self.table.size))
        if deviation is None:
            raise SuppressionFailed(
                f"cell {self.table.describe(cell)} cannot be protected: no "
                "change of the table moves it while its relations hold")
        self._add(deviation)

    def share(self, cell: int, need: float) -> None:
        """Where the cell is a part of one total only, the largest suppressed cells beside it in that total
        (also parts of nothing else) hide it without a program: whatever it gains they lose, in proportion.
        As few as reach `need`, so that each change stays small to check."""
        start, end = self.columns.indptr[cell], self.columns.indptr[cell + 1]
        if end - start != 1 or self.columns.data[start] < 0:
            return
        relations = self.table.relations
        row = self.columns.indices[start]
        members = relations.indices[relations.indptr[row]:relations.indptr[row + 1]]
        signs = relations.data[relations.indptr[row]:relations.indptr[row + 1]]
        alone = self.relations_of[members] == 1
        beside = members[(signs > 0) & alone & self.suppressed[members]]
        beside = beside[beside != cell]
        beside = beside[np.argsort(-self.table.values[beside], kind="stable")]
        enough = int(np.searchsorted(np.cumsum(self.table.values[beside]), need)) + 1
        beside = beside[:enough]
        weight = self.table.values[beside]
        if not len(beside) or weight.sum() <= 0:
            return
        self._add(_Deviation(np.concatenate([[cell], beside]), np.concatenate([[1.0], -weight / weight.sum()])))

    def _add(self, deviation: _Deviation) -> None:
        self.suppressed[deviation.cells] = True
        k = len(self.found)
        self.found.append(deviation)
        for c in deviation.cells:
            self.through[int(c)].append(k)

    def _candidates(self, cell: int) -> np.ndarray:
        table = self.table
        keep = np.ones(table.size, dtype=bool)
        for d, labels in enumerate(table.labels):
            if len(labels) <= NEIGHBOURS + 2:
                continue
            column = table.codes[:, d]
            beside = np.flatnonzero(table.beside[:, d] == table.beside[cell, d])
            cheapest = beside[np.argsort(table.values[beside], kind="stable")[:NEIGHBOURS]]
            offered = np.zeros(len(labels), dtype=bool)
            offered[column[cheapest]] = True
            offered[column[beside[self.suppressed[beside]]]] = True
            offered[column[cell]] = True
            offered[labels == TOTAL] = True
            keep &= offered[column]
        return np.flatnonzero(keep)

    def _solve(self, cell: int, need: float, direction: int, candidates: np.ndarray) -> _Deviation | None:
        """The cheapest change of the candidate cells that moves `cell` by `need` in `direction`."""
        self.programs += 1
        k = len(candidates)
        block = self.columns[:, candidates]
        used = np.flatnonzero(block.getnnz(axis=1))
        block = block[used]
        values = self.table.values[candidates]
        # Suppressing a cell costs its count (tau-Argus's default weight) plus one, so that zeros, which can
        # only move up, are not taken for free; cells already suppressed cost nothing more.
        cost = np.where(self.suppressed[candidates], 0.0, 1.0 + values)
        lower = np.zeros(2 * k)
        upper = np.concatenate([np.full(k, _INF), values])
        at = int(np.flatnonzero(candidates == cell)[0])
        if direction > 0:
            lower[at], upper[k + at] = need, 0.0
        else:
            lower[k + at], upper[at] = min(need, values[at]), 0.0
        exact = self.table.slack[used] <= _EPS
        row_lower = np.where(exact, 0.0, -_INF)
        row_upper = np.where(exact, 0.0, self.table.slack[used])
        matrix = sparse.hstack([block, -block], format="csc")
        solution = _minimise(np.concatenate([cost, cost]), lower, upper, matrix, row_lower, row_upper)
        if solution is None:
            return None
        change = solution[:k] - solution[k:]
        moved = np.abs(change) > _EPS
        return _Deviation(candidates[moved], change[moved])


def _minimise(cost: np.ndarray, lower: np.ndarray, upper: np.ndarray, matrix: sparse.csc_matrix,
              row_lower: np.ndarray, row_upper: np.ndarray) -> np.ndarray | None:
    highs = _program(_highs(), cost, lower, upper, matrix, row_lower, row_upper)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(highs.getSolution().col_value)


def _program(highs: highspy.Highs, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray,
             matrix: sparse.csc_matrix, row_lower: np.ndarray, row_upper: np.ndarray) -> highspy.Highs:
    """`highs` holding: minimise cost·x, lower <= x <= upper, row_lower <= matrix·x <= row_upper."""
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
    lp.row_lower_, lp.row_upper_ = row_lower, row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
    highs.passModel(lp)
    return highs


def _highs(warm: bool = False) -> highspy.Highs:
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    # Presolve costs more than it saves on programs solved in milliseconds (measured: 18 ms against 9 ms
    # a program on a 10,000-cell table).
    highs.setOptionValue("presolve", "off")
    # The attacker solves one program per bound, changing only the objective: primal simplex starts from the
    # last answer, which stays feasible (measured: 2.0 s against 14.7 s with the default on 2,518 programs).
    # A new program each time (the suppression's) is left to HiGHS's default, dual simplex: 71 s against 12 s.
    if warm:
        highs.setOptionValue("simplex_strategy", 4)
    return highs


@dataclass(frozen=True)
class Suppression:
    suppressed: np.ndarray  # bool per cell: primary or secondary
    primary: np.ndarray
    programs: int  # linear programs solved


def suppress(table: Table, threshold: float) -> Suppression:
    """Primary cells and the secondary cells that protect them (module docstring)."""
    sensitive = primary(table, threshold)
    protector = _Protector(table, sensitive.copy())
    need = protection(table.values, threshold)
    # A cell in no relation is bounded by nothing once hidden: no program needed.
    related = protector.relations_of > 0
    # The largest sensitive cells first: their changes are the widest and cover the smaller ones after.
    for cell in sorted(map(int, np.flatnonzero(sensitive & related)), key=lambda c: -table.values[c]):
        if protector.covered(cell, need[cell], table.values[cell]):
            continue
        protector.share(cell, need[cell])
        if protector.covered(cell, need[cell], table.values[cell]):
            continue
        protector.protect(cell, need[cell], +1)
        if not protector.covered(cell, need[cell], table.values[cell]):
            protector.protect(cell, table.values[cell], -1)
    return Suppression(protector.suppressed, sensitive, protector.programs)


@dataclass(frozen=True)
class Attack:
    """What a reader can work out of each suppressed cell from everything published with it."""
    lower: np.ndarray  # per cell; a published cell's own value
    upper: np.ndarray  # np.inf where nothing bounds it
    programs: int


def attack(table: Table, suppressed: np.ndarray) -> Attack:
    """The interval each suppressed cell must lie in, by linear programming over every published relation."""
    lower = table.values.copy()
    upper = table.values.copy()
    hidden = np.flatnonzero(suppressed)
    programs = 0
    if not len(hidden):
        return Attack(lower, upper, 0)
    relations = table.relations
    on_hidden = relations[:, hidden]
    involved = np.flatnonzero(on_hidden.getnnz(axis=1))
    # Cells linked by a relation are solved together; unlinked groups are separate, smaller programs.
    link = (on_hidden[involved].T @ on_hidden[involved]) if len(involved) else sparse.csr_matrix((len(hidden),) * 2)
    _, group = connected_components(link, directed=False)
    known = relations @ np.where(suppressed, 0.0, table.values)  # what the published cells contribute
    exact = table.slack <= _EPS
    for g in np.unique(group):
        members = hidden[group == g]
        block = relations[:, members].tocsc()
        rows = np.flatnonzero(block.getnnz(axis=1))
        if not len(rows):  # in no relation: nothing bounds it
            lower[members], upper[members] = 0.0, np.inf
            continue
        block = block[rows]
        # sum(hidden) + known = 0 (exact) or <= 0 (parts short of their total)
        row_upper = -known[rows]
        row_lower = np.where(exact[rows], -known[rows], -_INF)
        highs = _program(_highs(warm=True), np.zeros(len(members)), np.zeros(len(members)),
                         np.full(len(members), _INF), block, row_lower, row_upper)
        for j, cell in enumerate(members):
            for sense in (1.0, -1.0):
                highs.changeColCost(j, sense)
                highs.run()
                programs += 1
                status = highs.getModelStatus()
                if status == highspy.HighsModelStatus.kOptimal:
                    value = highs.getInfo().objective_function_value * sense
                elif status == highspy.HighsModelStatus.kUnbounded and sense < 0:
                    value = np.inf
                else:
                    raise SuppressionFailed(f"the attacker's program ended {status} (a table inconsistent "
                                            "with its own totals?)")
                if sense > 0:
                    lower[cell] = value
                else:
                    upper[cell] = value
            highs.changeColCost(j, 0.0)
    return Attack(lower, upper, programs)


def exposed(table: Table, suppression: Suppression, found: Attack, threshold: float) -> np.ndarray:
    """The suppressed cells the attacker pins down too closely: a sensitive cell whose interval does not reach
    its protection level up or 0 down; any suppressed cell whose value the interval gives exactly."""
    values = table.values
    tolerance = 1e-4 * np.maximum(1.0, values)
    need = protection(values, threshold)
    weak_primary = suppression.primary & ((found.upper < values + need - tolerance) | (found.lower > tolerance))
    pinned = suppression.suppressed & (found.upper - found.lower <= tolerance)
    return weak_primary | pinned
