"""Plans that are right: the committed examples, fields into Task, for_each, defaults."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.model import Task, TaskClass, TaskType, is_safe_task_id
from engine.plans import PlanError, load_plan, parse_plan_text, plan_notes, task_id_for

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "shared" / "plans"
NOW = 1_800_000_000.0


def parse(text: str, base_dir: Path | None = None, **kw) -> list[Task]:
    kw.setdefault("batch_id", "b1")
    return parse_plan_text(textwrap.dedent(text), filename="p.md", now=NOW, base_dir=base_dir, **kw)


def by_name(tasks: list[Task]) -> dict[str, Task]:
    return {t.name: t for t in tasks}


def test_hello_example_parses_into_shell_tasks_with_fan_out():
    tasks = load_plan(PLANS / "hello.md", now=NOW, batch_id="hello-1")
    t = by_name(tasks)
    assert list(t) == ["greet", "count letters[alpha]", "count letters[beta]", "count letters[gamma]", "wrap up"]
    assert all(x.type is TaskType.SHELL and x.task_class is TaskClass.CPU for x in tasks)
    assert t["count letters[beta]"].depends_on == ("hello-1.greet",)
    assert "beta" in t["count letters[beta]"].command and "{item}" not in t["count letters[beta]"].command
    assert set(t["wrap up"].depends_on) == {f"hello-1.count-letters.{w}" for w in ("alpha", "beta", "gamma")}
    assert t["wrap up"].command == 'echo "batch hello-1 done"'
    assert t["greet"].timeout_s == 60.0  # plan-wide default
    assert t["wrap up"].priority == 7 and t["greet"].priority == 5


def test_video_example_is_the_field_notes_pipeline():
    tasks = load_plan(PLANS / "video.md", now=NOW, batch_id="video-1")
    t = by_name(tasks)
    clips = sorted(p.stem for p in (PLANS / "clips").glob("*.wav"))
    assert len(clips) >= 2
    for clip in clips:
        tr, seg, emb = t[f"transcribe[{clip}]"], t[f"segment[{clip}]"], t[f"embed[{clip}]"]
        assert (tr.type, tr.task_class, tr.model) == (TaskType.TRANSCRIBE, TaskClass.SCRIPT, "tiny.en")
        assert Path(tr.params["audio"]) == PLANS / "clips" / f"{clip}.wav"
        assert seg.type is TaskType.LLM and seg.task_class is TaskClass.LLM and seg.model == "qwen2.5:7b"
        assert seg.depends_on == (tr.task_id,)  # paired item by item, not all transcripts
        assert seg.params["prompt"] and seg.params["system"]
        assert emb.depends_on == (seg.task_id,) and emb.model == "all-MiniLM-L6-v2"
        assert emb.params["input"] == seg.params["output"]
    index = t["index"]
    assert set(index.depends_on) == {t[f"embed[{c}]"].task_id for c in clips}
    assert "video-1" in index.command and "{batch}" not in index.command
    assert all(x.max_retries == 2 for x in tasks)


def test_round_trip_of_every_field_into_task():
    [task] = parse("""
        ## ask
        - type: llm
        - model: qwen2.5:7b
        - priority: 9
        - timeout: 2m
        - max_retries: 0
        - tier: 1
        - requires_external: yes
        - sensitive: true
        - executor: brain
        - max_tokens: 64
        - temperature: 0.5
        - system: be brief
        - output: out/a.txt

        ```prompt
        Say hi.
        Twice.
        ```
        """, source="tui")
    assert task.task_id == "b1.ask" and task.batch_id == "b1" and task.name == "ask"
    assert task.type is TaskType.LLM and task.task_class is TaskClass.LLM
    assert task.model == "qwen2.5:7b" and task.priority == 9 and task.timeout_s == 120.0
    assert task.max_retries == 0 and task.tier == 1 and task.requires_external and task.sensitive
    assert task.executor == "brain" and task.source == "tui" and task.created_at == NOW
    assert task.plan == "p.md:2" and task.fix_applied is None
    assert task.params == {"prompt": "Say hi.\nTwice.", "system": "be brief", "output": "out/a.txt",
                           "options": {"num_predict": 64, "temperature": 0.5}}  # Ollama's option names
    assert Task.from_dict(task.to_dict()) == task  # what the queue writes reads back the same


def test_other_task_types_and_their_params():
    t = by_name(parse("""
        ## hear
        - type: transcribe
        - audio: a.wav
        - language: en
        - beam_size: 2
        ## vec
        - type: embed
        - texts: one, two
        ## vec2
        - type: embed
        - input: lines.txt
        - batch_size: 8
        ## vec3
        - type: embed
        ```texts
        first line
        second line
        ```
        ## up
        - type: load_llm
        - model: qwen2.5:7b
        ## down
        - type: unload_llm
        - model: qwen2.5:7b
        """))
    assert t["hear"].params == {"audio": "a.wav", "language": "en", "beam_size": 2}
    assert t["hear"].task_class is TaskClass.SCRIPT
    assert t["vec"].params["texts"] == ["one", "two"]
    assert t["vec2"].params == {"input": "lines.txt", "batch_size": 8}
    assert t["vec3"].params["texts"] == ["first line", "second line"]
    assert t["up"].task_class is TaskClass.RESOURCE and t["down"].task_class is TaskClass.RESOURCE


def test_missing_class_is_autofixed_and_noted():
    t = by_name(parse("""
        ## gpu job
        - command: python whisper_run.py
        ## plain
        - command: ls
        """))
    assert t["gpu job"].task_class is TaskClass.SCRIPT
    assert "inferred 'script'" in (t["gpu job"].fix_applied or "")
    assert t["plain"].task_class is TaskClass.CPU and t["plain"].fix_applied
    notes = plan_notes(list(t.values()))
    assert notes[0].startswith("p.md:2: note: task 'gpu job': task_class missing")
    assert notes[1].startswith("p.md:4: note:")


def test_default_class_applies_to_shell_tasks_only():
    t = by_name(parse("""
        - class: cpu
        - llm_model: small
        ## a
        - command: run gpu thing
        ## b
        - type: llm
        - prompt: hi
        """))
    assert t["a"].task_class is TaskClass.CPU and t["a"].fix_applied is None and t["a"].model is None
    assert t["b"].task_class is TaskClass.LLM and t["b"].model == "small"


def test_for_each_glob_pairs_same_items_and_all_otherwise(tmp_path):
    for name in ("b.wav", "a.wav", "c.txt"):
        (tmp_path / name).write_text("x")
    t = by_name(parse("""
        ## hear
        - type: transcribe
        - for_each: *.wav
        - audio: {item}
        - output: out/{stem}-{index}.json
        ## think
        - type: llm
        - for_each: *.wav
        - depends_on: hear
        - prompt: summarise {stem}
        ## words
        - for_each: x, y
        - depends_on: hear
        - command: echo {item}
        ## pick
        - depends_on: hear[b]
        - command: echo {plan_dir}
        """, base_dir=tmp_path))
    assert [n for n in t if n.startswith("hear")] == ["hear[a]", "hear[b]"]  # sorted, only *.wav
    assert t["hear[a]"].params["audio"] == str(tmp_path / "a.wav")
    assert t["hear[b]"].params["output"] == "out/b-2.json"
    assert t["think[b]"].depends_on == ("b1.hear.b",) and t["think[b]"].params["prompt"] == "summarise b"
    assert t["words[x]"].depends_on == ("b1.hear.a", "b1.hear.b")  # other items: waits for all
    assert t["words[y]"].command == "echo y"
    assert t["pick"].depends_on == ("b1.hear.b",) and t["pick"].command == f"echo {tmp_path.resolve()}"


def test_for_each_nested_list_and_colliding_stems():
    t = parse("""
        ## run
        - for_each:
          - data/a.csv
          - other/a.csv
          - `b c`
        - command: wc -l {item}
        """)
    assert [x.name for x in t] == ["run[a]", "run[a-2]", "run[b-c]"]
    assert [x.command for x in t] == ["wc -l data/a.csv", "wc -l other/a.csv", "wc -l b c"]


def test_ids_are_stable_safe_and_bounded():
    tasks = parse("""
        ## Transcribe Clips!
        - command: true
        """, batch_id="video-20261122-110240-3fa9")
    assert tasks[0].task_id == "video-20261122-110240-3fa9.transcribe-clips"
    long_id = task_id_for("b" * 60, "x" * 100)
    assert len(long_id) <= 128 and is_safe_task_id(long_id)
    assert task_id_for("b" * 60, "x" * 100) == long_id


def test_generated_batch_id_uses_plan_name_and_time(tmp_path):
    plan = tmp_path / "My Plan.md"
    plan.write_text("## a\n- command: true\n")
    [a] = load_plan(plan, now=NOW)
    [b] = load_plan(plan, now=NOW)
    assert a.batch_id.startswith("my-plan-20270115-080000-") and is_safe_task_id(a.task_id)
    assert a.batch_id != b.batch_id  # two submissions of one plan never share ids
    named = tmp_path / "n.md"
    named.write_text("- batch: nightly\n## a\n- command: true\n")
    assert load_plan(named, now=NOW)[0].batch_id.startswith("nightly-")


def test_prose_comments_and_subheadings_are_ignored():
    tasks = parse("""
        # Title
        Some prose with a colon: not a field.

        > - quoted: not a field either

        <!--
        ## disabled
        - command: rm -rf /
        -->
        ## a
        Why this task exists.
        ### details
        - command: `echo "a: b"`
        - see http://example.com
        """)
    assert [t.name for t in tasks] == ["a"] and tasks[0].command == 'echo "a: b"'


def test_bad_batch_id_argument_is_a_programming_error():
    with pytest.raises(ValueError):
        parse("## a\n- command: true\n", batch_id="../x")


def test_plan_error_message_lists_every_error():
    with pytest.raises(PlanError) as info:
        parse("## a\n- priority: 0\n## b\n- command: x\n- nope: 1\n")
    assert len(info.value.errors) == 3
    assert "3 errors" in str(info.value) and all(e in str(info.value) for e in info.value.errors)


def _markdown_examples(doc: str) -> list[str]:
    return [block.split("\n", 1)[1] for block in doc.split("````markdown")[1:]
            for block in [block.split("\n````", 1)[0]]]


def test_docs_examples_parse_and_the_full_example_is_the_committed_plan():
    doc = (REPO / "docs" / "plan-format.md").read_text()
    first, full = _markdown_examples(doc)
    tasks = parse(first)
    assert [t.name for t in tasks] == ["greet", "shout"] and tasks[1].depends_on == ("b1.greet",)
    assert full.strip() == (PLANS / "video.md").read_text().strip()


def test_hello_commands_really_run_in_a_shell(tmp_path):
    """The example must run anywhere: each command, run as a worker would (sh -c), succeeds."""
    import subprocess

    tasks = load_plan(PLANS / "hello.md", now=NOW, batch_id="hello-1")
    outputs = {t.name: subprocess.run(["sh", "-c", t.command], cwd=tmp_path, capture_output=True, text=True,
                                      timeout=30, check=False) for t in tasks}
    assert all(p.returncode == 0 for p in outputs.values()), {n: p.stderr for n, p in outputs.items()}
    assert outputs["count letters[alpha]"].stdout.strip() == "alpha has 5 letters"
    assert outputs["wrap up"].stdout.strip() == "batch hello-1 done"


@pytest.mark.parametrize("plan", sorted(PLANS.glob("*.md")), ids=lambda p: p.name)
def test_every_committed_plan_checks_clean(plan: Path):
    tasks = load_plan(plan, now=NOW)
    assert tasks and all(t.plan and t.plan.startswith(str(plan)) for t in tasks)


def test_a_byte_order_mark_and_windows_line_ends_are_fine():
    [task] = parse("\ufeff# T\r\n\r\n## a\r\n- command: ls\r\n- priority: 2\r\n")
    assert task.command == "ls" and task.priority == 2 and task.plan == "p.md:3"
