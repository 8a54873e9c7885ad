"""Plans that are wrong: every error kind, each with its line, all reported at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.plans import PlanError, load_plan, parse_plan_text

NOW = 1_800_000_000.0


def errors_of(text: str, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan_text(textwrap.dedent(text).lstrip("\n"), filename="bad.md", now=NOW,
                        batch_id="b", base_dir=base_dir)
    return info.value.errors


def test_dependency_cycle_names_its_path_at_the_first_task():
    errors = errors_of("""
        ## a
        - command: x
        - depends_on: c
        ## b
        - command: x
        - depends_on: a
        ## c
        - command: x
        - depends_on: b
        ## d
        - command: x
        - depends_on: a
        """)
    assert errors == ["bad.md:3: dependency cycle: a -> c -> b -> a"]


def test_self_dependency_and_self_item_dependency():
    errors = errors_of("""
        ## a
        - command: x
        - depends_on: a
        ## fan
        - for_each: p, q
        - command: x
        - depends_on: fan[q]
        """)
    assert errors == ["bad.md:3: task 'a' depends on itself", "bad.md:7: task 'fan' depends on itself"]


def test_cycle_through_fanned_out_tasks_is_reported_once():
    errors = errors_of("""
        ## x
        - for_each: 1, 2, 3
        - command: x
        - depends_on: y
        ## y
        - for_each: 1, 2, 3
        - command: y
        - depends_on: x
        """)
    assert errors == ["bad.md:4: dependency cycle: x -> y -> x"]


def test_two_separate_cycles_are_both_reported():
    errors = errors_of("""
        ## a
        - command: x
        - depends_on: b
        ## b
        - command: x
        - depends_on: a
        ## c
        - command: x
        - depends_on: d
        ## d
        - command: x
        - depends_on: c
        """)
    assert errors == ["bad.md:3: dependency cycle: a -> b -> a", "bad.md:9: dependency cycle: c -> d -> c"]


def test_unknown_dependency_suggests_the_closest_name():
    errors = errors_of("""
        ## transcribe
        - command: x
        ## segment
        - command: y
        - depends_on: transcibe, nothing
        """)
    assert errors == ["bad.md:5: depends_on: unknown task 'transcibe' (did you mean 'transcribe'?)",
                      "bad.md:5: depends_on: unknown task 'nothing'"]


def test_unknown_item_of_a_fan_out():
    errors = errors_of("""
        ## t
        - for_each: a, b
        - command: x
        ## u
        - command: y
        - depends_on: t[c]
        """)
    assert errors[0].startswith("bad.md:6: depends_on: unknown task 't[c]'")


def test_duplicate_names_and_names_that_collide_as_ids():
    errors = errors_of("""
        ## build
        - command: x
        ## build
        - command: y
        ## Build It
        - command: z
        ## build-it
        - command: w
        """)
    assert errors == ["bad.md:3: duplicate task name 'build' (first on line 1)",
                      "bad.md:7: task 'build-it' gets the same id as 'Build It' (line 5); rename one of them"]


def test_unknown_keys_suggest_the_closest_known_key():
    errors = errors_of("""
        - prority: 3
        ## a
        - comand: ls
        - dependson: b
        - colour: red
        """)
    assert errors[:3] == [
        "bad.md:1: unknown key 'prority' in the plan's defaults (did you mean 'priority'?)",
        "bad.md:3: unknown key 'comand' (did you mean 'command'?)",
        "bad.md:4: unknown key 'dependson' (did you mean 'depends_on'?)",
    ]
    assert errors[3:] == ["bad.md:5: unknown key 'colour'"]  # no "needs a command" on top of 'comand'
    assert errors_of("## a\n- colour: red\n") == [
        "bad.md:1: task 'a': a shell task needs a command: '- command: ...' or a ```sh block",
        "bad.md:2: unknown key 'colour'"]


@pytest.mark.parametrize("line, message", [
    ("- priority: 11", "priority must be 1-10, got 11"),
    ("- priority: 0", "priority must be 1-10, got 0"),
    ("- priority: high", "priority must be a whole number, got 'high'"),
    ("- class: gpu", "class 'gpu' is not one of cpu, script, llm, resource"),
    ("- class: resource", "class resource is reserved for load_llm/unload_llm tasks"),
    ("- timeout: soon", "timeout must be seconds or a duration like 90s, 30m, 2h; got 'soon'"),
    ("- timeout: 0", "timeout must be more than 0"),
    ("- max_retries: -1", "max_retries must be 0-100, got -1"),
    ("- sensitive: maybe", "sensitive must be yes or no (true/false), got 'maybe'"),
    ("- executor: gpu0", "executor 'gpu0' is not one of worker, brain, any"),
    ("- tier: -2", "tier must be >= 0, got -2"),
    ("- depends_on:", "depends_on needs at least one entry"),
    ("- audio: a.wav", "'audio' does not apply to a shell task (it is for transcribe tasks)"),
    ("- batch: x", "'batch' belongs in the plan's defaults list"),
])
def test_bad_values_name_the_line(line: str, message: str):
    errors = errors_of(f"## a\n- command: ls\n{line}\n")
    assert any(e.startswith(f"bad.md:3: {message}") for e in errors), errors


def test_bad_type_suggests_and_does_not_pile_on():
    errors = errors_of("## a\n- type: lml\n- prompt: hi\n")
    assert errors == [("bad.md:2: type 'lml' is not one of shell, llm, transcribe, embed, load_llm, "
                      "unload_llm (did you mean 'llm'?)")]


@pytest.mark.parametrize("body, message", [
    ("- type: llm", "bad.md:1: task 'a': an llm task needs a prompt"),
    ("- type: transcribe", "bad.md:1: task 'a': a transcribe task needs '- audio: <file>'"),
    ("- type: embed", "bad.md:1: an embed task needs '- texts: ...'"),
    ("- type: load_llm", "bad.md:1: task 'a': a load_llm task needs '- model: <name>'"),
    ("- type: embed\n- texts: a\n- input: f.txt", "bad.md:4: an embed task takes texts or input, not both"),
    ("- type: load_llm\n- model: m\n- class: cpu", "bad.md:4: a load_llm task is always class resource"),
])
def test_missing_command_prompt_or_input(body: str, message: str):
    errors = errors_of(f"## a\n{body}\n")
    assert any(e.startswith(message) for e in errors), errors


def test_code_block_problems():
    errors = errors_of("""
        ## a
        - command: ls
        ```sh
        ls -l
        ```
        ## b
        ```python
        print(1)
        ```
        ## c
        - type: transcribe
        - audio: x.wav
        ```
        what is this
        ```
        ## d
        ```sh
        ```
        ## e
        ```sh
        never closed
        """)
    assert "bad.md:3: command is given twice in task 'a' (also on line 2)" in errors
    assert any(e.startswith("bad.md:7: code block kind 'python' is not used") for e in errors)
    assert any(e.startswith("bad.md:13: an untagged code block in a transcribe task is not used") for e in errors)
    assert "bad.md:17: the command code block is empty" in errors
    assert "bad.md:20: code block is never closed (add a line with ```)" in errors


def test_structure_problems():
    assert errors_of("just prose\n- priority: 3\n") == [
        "bad.md:1: the plan has no tasks: each task is a '## name' heading followed by '- key: value' lines"]
    errors = errors_of("""
        # One
        ## a
        - command: x
        # Two
        ##
        ## b, c
        - command: x
        - command: y
        """)
    assert errors == [
        "bad.md:4: only one '# title' is allowed, before the first task; use '## name' for a task",
        "bad.md:5: a task heading needs a name: '## transcribe'",
        "bad.md:6: task name 'b, c' must not contain , (brackets name for_each items, commas separate depends_on)",
    ]


def test_defaults_that_cannot_be_defaults_and_repeats():
    errors = errors_of("""
        - command: ls
        - priority: 3
        - priority: 4
        ## a
        - command: x
        - priority: 5
        - priority: 6
        """)
    assert errors == [
        "bad.md:1: 'command' cannot be a plan-wide default; set it under each '## task'",
        "bad.md:3: 'priority' is given twice (first on line 2)",
        "bad.md:7: 'priority' is given twice in task 'a' (first on line 6)",
    ]


def test_item_placeholders_outside_for_each_and_empty_globs(tmp_path):
    errors = errors_of("""
        ## a
        - command: echo {item}
        ## b
        - for_each: *.nothing
        - command: echo {item}
        """, base_dir=tmp_path)
    assert errors[0] == "bad.md:2: {item} in 'command' only has a value in a for_each task"
    assert errors[1].startswith("bad.md:4: for_each: '*.nothing' matches no files")


def test_every_error_is_collected_in_one_pass():
    errors = errors_of("""
        - prioity: 2
        ## a
        - priority: 12
        - command: ls
        - depends_on: zz
        ## a
        - command: ls
        ## b
        - type: llm
        """)
    assert [e.split(":")[1] for e in errors] == ["1", "3", "5", "6", "8"]


def test_file_level_errors(tmp_path):
    missing = tmp_path / "missing.md"
    with pytest.raises(PlanError) as info:
        load_plan(missing, now=NOW)
    assert info.value.errors == [f"{missing}:1: cannot read plan: No such file or directory"]

    huge = tmp_path / "huge.md"
    huge.write_bytes(b"x" * 1_000_001)
    with pytest.raises(PlanError) as info:
        load_plan(huge, now=NOW)
    assert "plan file is 1,000,001 bytes, over the 1,000,000-byte limit" in info.value.errors[0]

    binary = tmp_path / "bin.md"
    binary.write_bytes(b"## a\n- command: ls\n\xff\xfe\n")
    with pytest.raises(PlanError) as info:
        load_plan(binary, now=NOW)
    assert info.value.errors == [f"{binary}:3: not UTF-8 text (byte 19)"]


def test_a_runaway_for_each_is_refused():
    items = ", ".join(f"i{n}" for n in range(10_001))
    errors = errors_of(f"## a\n- for_each: {items}\n- command: echo {{item}}\n")
    assert errors == [("bad.md:2: for_each gives 10001 items; the limit is 10000 per task "
                      "(split the plan, or narrow the glob)")]
