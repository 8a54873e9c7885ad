"""The Prometheus text format (0.0.4) written straight from metric families.

prometheus-client's ``generate_latest`` validates and escapes every label name and metric
name of every sample, character by character: on a busy rig (530 series) that was 10 ms of
a 15 ms scrape. Our names are fixed and valid, so ``render`` writes the same bytes without
that work (tests/engine/test_metrics_exposition.py compares the two). A family it does not
know how to write (timestamps, OpenMetrics-only samples, info or stateset types) goes
through ``generate_latest`` unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

_TYPES = {"gauge": "gauge", "counter": "counter", "histogram": "histogram", "summary": "summary"}
_OM_ONLY = ("_created", "_gsum", "_gcount")
_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_good_labels: set[str] = set()  # label names seen to need no escaping
SERIES_MEMO = 20_000
_series_text: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


class _Families(Collector):
    """What ``generate_latest`` wants: a collector."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def go_float(value: float) -> str:
    """A sample value as Go (and prometheus-client's floatToGoString) writes it."""
    d = float(value)
    if -1e6 < d < 1e6:  # the common case, and NaN fails it
        return repr(d)
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if d != d:
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _plain(metric: Metric) -> bool:
    """True when ``render`` writes the family itself: names that need no escaping, no timestamps."""
    if metric.type not in _TYPES or not _LEGACY_NAME.fullmatch(metric.name):
        return False
    for s in metric.samples:
        if s.timestamp is not None or s.exemplar is not None or s.name.endswith(_OM_ONLY):
            return False
        for k in s.labels:
            if k not in _good_labels:
                if not _LEGACY_LABEL.fullmatch(k):
                    return False
                _good_labels.add(k)
    return True


def _series(name: str, labels: dict[str, str]) -> str:
    """``name{a="x",b="y"} `` (labels sorted by name, values escaped), remembered: the same
    series come back every scrape."""
    key = (name, tuple(labels.items()))
    text = _series_text.get(key)
    if text is None:
        if len(_series_text) >= SERIES_MEMO:
            _series_text.clear()
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        text = _series_text[key] = f"{name}{{{pairs}}} "
    return text


def render(metrics: Iterable[Metric]) -> bytes:
    """The families in the text format, byte for byte what ``generate_latest`` gives for them."""
    out: list[str] = []
    for metric in metrics:
        if not _plain(metric):
            out.append(generate_latest(_Families([metric])).decode())
            continue
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        doc = metric.documentation.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {metric.type}\n")
        for s in metric.samples:
            if s.labels:
                out.append(f"{_series(s.name, s.labels)}{go_float(s.value)}\n")
            else:
                out.append(f"{s.name} {go_float(s.value)}\n")
    return "".join(out).encode()
