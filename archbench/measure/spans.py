"""Spans of time on one thread: sorted, disjoint ``[start, end)`` intervals in ns, what
:mod:`archbench.measure.breakdown` attributes a profiled pass with; and device work indexed
by the time its op was launched. Pure Python."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

Spans = list[tuple[int, int]]

def merged(spans: Sequence[tuple[int, int]]) -> Spans:
    out: Spans = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out

def intersect(a: Spans, b: Spans) -> Spans:
    out: Spans = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out

def subtract(a: Spans, b: Spans) -> Spans:
    out: Spans = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        while k < len(b) and b[k][0] < end:
            if b[k][0] > start:
                out.append((start, b[k][0]))
            start = max(start, b[k][1])
            k += 1
        if start < end:
            out.append((start, end))
    return out

def length(spans: Spans) -> int:
    return sum(end - start for start, end in spans)

class WorkIndex:
    """Device work by launch time, to sum the work launched inside any spans quickly."""

    def __init__(self, work: Sequence[tuple[int | None, int]]) -> None:
        linked = sorted((point, ns) for point, ns in work if point is not None)
        self.points = [point for point, _ in linked]
        self.cumulative = [0]
        for _, ns in linked:
            self.cumulative.append(self.cumulative[-1] + ns)
        self.total = sum(ns for _, ns in work)

    def within(self, spans: Spans) -> int:
        total = 0
        for start, end in spans:
            low = bisect.bisect_left(self.points, start)
            high = bisect.bisect_left(self.points, end)
            total += self.cumulative[high] - self.cumulative[low]
        return total

