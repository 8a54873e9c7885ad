"""for_each fan-out, placeholders, dependency resolution and cycle detection.

Fan-out rule (kept small on purpose): a task with ``for_each`` becomes one task per item,
named ``name[key]`` where key is the item's file stem. A fanned-out task that depends on
another task fanned out over the *same items* waits only for its own item's task;
every other dependency on a fanned-out task waits for all of its items.
"""

from __future__ import annotations

import glob as globlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from engine.plans.errors import ErrorCollector, suggest
from engine.plans.sections import Draft, slug

_GLOB_CHARS = re.compile(r"[*?\[]")
_PLACEHOLDER = re.compile(r"\{(item|stem|index|plan_dir|batch)\}")
ITEM_PLACEHOLDERS = ("item", "stem", "index")
MAX_ITEMS = 10_000
"""More items than this in one for_each is almost surely a glob gone wrong (``/*``)."""


@dataclass
class Instance:
    """One task to be: a draft, or one item of a fanned-out draft."""

    draft: Draft
    name: str
    id_part: str
    variables: dict[str, str]
    depends_on: list[str] = field(default_factory=list)  # instance names


@dataclass
class Group:
    draft: Draft
    items: tuple[str, ...] | None  # None: not fanned out
    instances: list[Instance]


def expand_items(draft: Draft, base_dir: Path, errors: ErrorCollector) -> tuple[str, ...] | None:
    """The for_each items: literal entries as written, globs as sorted absolute paths.

    None: no for_each. Empty: a for_each whose problem was reported (the task then
    expands to nothing, so no follow-on errors about ``{item}``)."""
    spec = draft.values.get("for_each")
    if spec is None:
        return None
    if spec.value is None:
        return ()
    items: list[str] = []
    for entry in spec.value:
        if _GLOB_CHARS.search(entry):
            pattern = entry if os.path.isabs(entry) else str(base_dir / entry)
            matches = sorted(globlib.glob(pattern))
            if not matches:
                errors.add(spec.line, f"for_each: {entry!r} matches no files (looked in {base_dir})")
            items.extend(matches)
        else:
            items.append(entry)
    unique = tuple(dict.fromkeys(items))
    if len(unique) > MAX_ITEMS:
        errors.add(spec.line, f"for_each gives {len(unique)} items; the limit is {MAX_ITEMS} per task "
                              "(split the plan, or narrow the glob)")
        return ()
    return unique


def item_keys(items: tuple[str, ...]) -> list[str]:
    """Short, unique, file-name-safe keys: the file stem, else the item's position."""
    keys: list[str] = []
    for index, item in enumerate(items, start=1):
        key = slug(PurePath(item).stem) or slug(item) or str(index)
        keys.append(key if key not in keys else f"{key}-{index}")
    return keys


def substitute(text: str, variables: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


def build_groups(drafts: list[Draft], base_dir: Path, batch_id: str,
                 errors: ErrorCollector) -> list[Group]:
    common = {"plan_dir": str(base_dir), "batch": batch_id}
    groups: list[Group] = []
    for draft in drafts:
        items = expand_items(draft, base_dir, errors)
        if items is None:
            _check_no_item_placeholders(draft, errors)
            instances = [Instance(draft, draft.name, slug(draft.name), dict(common))]
        else:
            instances = [
                Instance(draft, f"{draft.name}[{key}]", f"{slug(draft.name)}.{key}",
                         {**common, "item": item, "stem": PurePath(item).stem, "index": str(i)})
                for i, (item, key) in enumerate(zip(items, item_keys(items)), start=1)
            ]
        groups.append(Group(draft, items, instances))
    return groups


def _check_no_item_placeholders(draft: Draft, errors: ErrorCollector) -> None:
    for key, value in draft.values.items():
        texts = value.value if isinstance(value.value, list) else [value.value]
        for text in texts:
            if isinstance(text, str):
                for m in _PLACEHOLDER.finditer(text):
                    if m.group(1) in ITEM_PLACEHOLDERS:
                        errors.add(value.line, f"{{{m.group(1)}}} in {key!r} only has a value in a for_each task")
                        return


def check_unique(groups: list[Group], errors: ErrorCollector) -> None:
    seen_names: dict[str, int] = {}
    seen_ids: dict[str, tuple[str, int]] = {}
    for g in groups:
        d = g.draft
        if d.name in seen_names:
            errors.add(d.line, f"duplicate task name {d.name!r} (first on line {seen_names[d.name]})")
            continue
        seen_names[d.name] = d.line
        for inst in g.instances:
            other = seen_ids.get(inst.id_part)
            if other and other[0] != d.name:
                errors.add(d.line, f"task {inst.name!r} gets the same id as {other[0]!r} (line {other[1]}); "
                                   "rename one of them")
            seen_ids.setdefault(inst.id_part, (d.name, d.line))


def resolve_dependencies(groups: list[Group], errors: ErrorCollector) -> dict[str, set[str]]:
    """Fill each instance's depends_on (instance names). Returns the name-level graph."""
    by_name = {g.draft.name: g for g in groups}
    by_instance = {inst.name: (g, inst) for g in groups if g.items is not None for inst in g.instances}
    graph: dict[str, set[str]] = {g.draft.name: set() for g in groups}
    for g in groups:
        deps = g.draft.values.get("depends_on")
        if deps is None or deps.value is None:
            continue
        for ref in dict.fromkeys(deps.value):
            if ref == g.draft.name or (ref in by_instance and by_instance[ref][0] is g):
                errors.add(deps.line, f"task {g.draft.name!r} depends on itself")
                continue
            if ref in by_name:
                target = by_name[ref]
                graph[g.draft.name].add(ref)
                paired = g.items is not None and target.items is not None and g.items == target.items
                for i, inst in enumerate(g.instances):
                    inst.depends_on.extend([target.instances[i].name] if paired
                                           else [t.name for t in target.instances])
            elif ref in by_instance:
                target, one = by_instance[ref]
                graph[g.draft.name].add(target.draft.name)
                for inst in g.instances:
                    inst.depends_on.append(one.name)
            else:
                errors.add(deps.line, f"depends_on: unknown task {ref!r}"
                                      f"{suggest(ref, list(by_name) + list(by_instance))}")
    return graph


def find_cycles(graph: dict[str, set[str]], lines: dict[str, int], errors: ErrorCollector) -> None:
    """Report each dependency cycle once, as a path of task names.

    Checking names (not fanned-out items) is exact: every item of a task depends on at
    least one item of each task it names, so a cycle of names is a cycle of items.
    """
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph:
        if state.get(start):
            continue
        path: list[str] = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):]
                if frozenset(cycle) not in seen_cycles:
                    seen_cycles.add(frozenset(cycle))
                    first = min(cycle, key=lambda n: lines[n])
                    at = cycle.index(first)
                    ordered = cycle[at:] + cycle[:at] + [first]
                    errors.add(lines[first], "dependency cycle: " + " -> ".join(ordered))
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
