"""Farm integration: the Flamenco job type compiles to one `--shard k/N` Blender command per task
(checked with node against a recording stand-in of Flamenco's job compiler API), and the Slurm
array script maps array task ids to shards.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT
from monocle import cli

JOB_TYPE_JS = ROOT / "farm" / "flamenco" / "monocle_reconstruct.js"
HARNESS_JS = ROOT / "tests" / "flamenco" / "harness.js"
SLURM_SH = ROOT / "farm" / "slurm" / "monocle_array.sh"

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed: the Flamenco job type cannot be compiled")
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")

# The job setting schema of Flamenco's API (AvailableJobSetting in flamenco-openapi.yaml).
SETTING_TYPES = {"string", "int32", "float", "bool"}
SETTING_SUBTYPES = {"file_path", "dir_path", "file_name", "hashed_file_path"}
SETTING_VISIBILITY = {"visible", "hidden", "submission", "web"}
SETTING_FIELDS = {"key", "type", "subtype", "choices", "propargs", "description", "label", "default", "eval",
                  "evalInfo", "visible", "required", "editable"}

IN, OUT = "/farm/photos", "/farm/out/"


def compile_job(settings: dict) -> tuple[int, dict]:
    """Run the job type's compileJob() in the stand-in; (exit code, its JSON answer)."""
    job = json.dumps({"name": "monocle test", "settings": settings})
    proc = subprocess.run([NODE, str(HARNESS_JS), str(JOB_TYPE_JS)], input=job, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def worker_argv(command: dict) -> list[str]:
    """The argv a Flamenco Worker runs for a `blender-render` command:
    ``{exe} {exeArgs} {argsBefore} {blendfile} {args}``, an empty blendfile left out."""
    assert command["name"] == "blender-render"
    p = command["parameters"]
    assert isinstance(p["exe"], str) and p["exe"]
    assert isinstance(p.get("exeArgs", ""), str)
    assert isinstance(p["blendfile"], str)  # Workers refuse a missing or non-string blendfile
    for key in ("argsBefore", "args"):
        assert all(isinstance(a, str) for a in p.get(key, [])), (key, p.get(key))
    return [p["exe"], *shlex.split(p.get("exeArgs", "")), *p.get("argsBefore", []),
            *([p["blendfile"]] if p["blendfile"] else []), *p.get("args", [])]


def option(argv: list[str], name: str) -> str:
    """The value after the only occurrence of option ``name``."""
    assert argv.count(name) == 1, (name, argv)
    return argv[argv.index(name) + 1]


@needs_node
def test_flamenco_job_type_declares_valid_settings():
    code, answer = compile_job({"input_dir": IN, "output_dir": OUT})
    assert code == 0, answer
    job_type = answer["job_type"]
    assert job_type["label"]
    settings = {s["key"]: s for s in job_type["settings"]}
    assert len(settings) == len(job_type["settings"])
    expected = {"input_dir", "output_dir", "formats", "engine", "num_tasks", "template_weight", "extra_args"}
    assert expected <= set(settings)
    for s in settings.values():
        assert set(s) <= SETTING_FIELDS, s
        assert s["type"] in SETTING_TYPES, s
        assert s.get("subtype", "dir_path") in SETTING_SUBTYPES, s
        assert s.get("visible", "visible") in SETTING_VISIBILITY, s
        if "choices" in s:
            assert s["type"] == "string" and s["default"] in s["choices"], s
    assert settings["input_dir"]["required"] and settings["output_dir"]["required"]
    assert settings["num_tasks"]["type"] == "int32" and settings["num_tasks"]["propargs"]["min"] == 1


@needs_node
@pytest.mark.parametrize("n", [1, 3, 7])
def test_flamenco_compiles_one_shard_per_task(n):
    code, answer = compile_job({
        "input_dir": IN, "output_dir": OUT, "num_tasks": n, "formats": "glb, OBJ,glb", "engine": "transformers",
        "use_template": True, "template_weight": 0.25, "overwrite": True,
        "extra_args": "--detail 40000 --prompt 'red chair'",
    })
    assert code == 0, answer
    tasks = answer["tasks"]
    assert len(tasks) == n
    assert len({t["name"] for t in tasks}) == n
    shards = []
    for task in tasks:
        assert task["type"] == "blender" and task["dependencies"] == []
        assert len(task["commands"]) == 1
        argv = worker_argv(task["commands"][0])
        assert argv[:7] == ["{blender}", "-b", "-c", "monocle", "reconstruct", IN, "-o"]
        assert argv.count("-c") == 1  # `-c` swallows everything after it: nothing of Blender's may follow
        assert option(argv, "-o") == OUT
        assert option(argv, "--format") == "glb,obj"
        assert option(argv, "--engine") == "transformers"
        assert option(argv, "--template-weight") == "0.25"
        assert "--overwrite" in argv
        assert argv[-4:] == ["--detail", "40000", "--prompt", "red chair"]
        shard = option(argv, "--shard")
        k, total = shard.split("/")
        assert total == str(n)
        assert option(argv, "--report") == f"/farm/out/report-{k}-of-{n}.json"
        shards.append(int(k))
    assert sorted(shards) == list(range(1, n + 1))


@needs_node
def test_flamenco_defaults_for_settings_left_out():
    code, answer = compile_job({"input_dir": IN, "output_dir": "/farm/out"})
    assert code == 0, answer
    argvs = [worker_argv(t["commands"][0]) for t in answer["tasks"]]
    assert [option(a, "--shard") for a in argvs] == ["1/4", "2/4", "3/4", "4/4"]
    for k, argv in enumerate(argvs, start=1):
        assert option(argv, "--format") == "glb" and option(argv, "--engine") == "auto"
        assert "--template-weight" not in argv and "--overwrite" not in argv
        assert argv[-2:] == ["--report", f"/farm/out/report-{k}-of-4.json"]


@needs_node
@pytest.mark.parametrize("settings, message", [
    ({"num_tasks": 0}, "Tasks must be a whole number"),
    ({"num_tasks": -3}, "Tasks must be a whole number"),
    ({"num_tasks": 2.5}, "Tasks must be a whole number"),
    ({"num_tasks": "many"}, "Tasks must be a whole number"),
    ({"input_dir": ""}, "Input Folder is empty"),
    ({"input_dir": "   "}, "Input Folder is empty"),
    ({"input_dir": None}, "Input Folder is empty"),
    ({"output_dir": ""}, "Output Folder is empty"),
    ({"formats": "glb,gltf"}, "Unknown format 'gltf'"),
    ({"formats": " , "}, "Formats is empty"),
    ({"engine": "magic"}, "Engine must be one of auto, classic, drawing, transformers"),
    ({"use_template": True, "template_weight": 1.5}, "Template Weight must be between 0 and 1"),
    ({"extra_args": "--detail 9000 --shard 1/2"}, "may not set --shard"),
    ({"extra_args": "-o /elsewhere"}, "may not set -o"),
    ({"extra_args": "--report=/tmp/r.json"}, "may not set --report"),
])
def test_flamenco_rejects_bad_settings(settings, message):
    code, answer = compile_job({"input_dir": IN, "output_dir": OUT, "num_tasks": 2, **settings})
    assert code == 1, answer
    assert message in answer["error"]


@needs_node
def test_flamenco_command_parses_with_monocle_own_parser():
    parser = cli.build_parser()
    code, answer = compile_job({"input_dir": IN, "output_dir": OUT, "num_tasks": 2, "use_template": True,
                                "template_weight": 0.75, "extra_args": "--detail 40000 --back solidify"})
    assert code == 0, answer
    argv = worker_argv(answer["tasks"][1]["commands"][0])
    ns = parser.parse_args(argv[argv.index("-c") + 2:])  # Blender hands the command what follows `-c monocle`
    assert ns.command == "reconstruct" and ns.inputs == [IN] and ns.output == OUT
    assert (ns.format, ns.engine, ns.template_weight, ns.detail, ns.back) == ("glb", "auto", 0.75, 40000,
                                                                              "solidify")
    assert ns.report == "/farm/out/report-2-of-2.json"


# --- Slurm --------------------------------------------------------------------------------------


def run_slurm_script(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str] | None]:
    """Run the array script with a fake `blender` on PATH that records its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "blender"
    fake.write_text('#!/bin/sh\nprintf "%s\\0" "$@" > "$FAKE_BLENDER_ARGV"\n')
    fake.chmod(0o755)
    record = tmp_path / "argv"
    record.unlink(missing_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MONOCLE_", "BLENDER"))}
    full_env = {**clean, "PATH": f"{bin_dir}{os.pathsep}{clean.get('PATH', '')}", "FAKE_BLENDER_ARGV": str(record),
                **env}
    proc = subprocess.run(["bash", str(SLURM_SH), *args], env=full_env, capture_output=True, text=True, timeout=60)
    argv = record.read_text().split("\0")[:-1] if record.exists() else None
    return proc, argv


def array_env(task_id: int, first: int, last: int, count: int | None = None) -> dict[str, str]:
    return {"SLURM_ARRAY_TASK_ID": str(task_id), "SLURM_ARRAY_TASK_MIN": str(first),
            "SLURM_ARRAY_TASK_MAX": str(last), "SLURM_ARRAY_TASK_COUNT": str(count or last - first + 1)}


@needs_bash
@pytest.mark.parametrize("first", [1, 0])
def test_slurm_array_task_runs_its_shard(tmp_path, first):
    shards = []
    for task_id in range(first, first + 4):
        proc, argv = run_slurm_script(tmp_path, "/data/in dir", "/data/out/", "--detail", "9000",
                                      MONOCLE_FORMAT="glb,blend", **array_env(task_id, first, first + 3))
        assert proc.returncode == 0, proc.stderr
        k = task_id - first + 1
        assert argv == ["-b", "-c", "monocle", "reconstruct", "/data/in dir", "-o", "/data/out/",
                        "--format", "glb,blend", "--engine", "auto", "--shard", f"{k}/4",
                        "--report", f"/data/out/report-{k}-of-4.json", "--detail", "9000"]
        shards.append(k)
    assert shards == [1, 2, 3, 4]


@needs_bash
def test_slurm_explicit_shard_count_reruns_one_shard(tmp_path):
    proc, argv = run_slurm_script(tmp_path, "in", "out", MONOCLE_SHARDS="8", SLURM_ARRAY_TASK_ID="3")
    assert proc.returncode == 0, proc.stderr
    assert argv[argv.index("--shard") + 1] == "3/8"
    assert argv[argv.index("--report") + 1] == "out/report-3-of-8.json"


@needs_bash
@pytest.mark.parametrize("args, env, message", [
    (("in", "out"), {}, "SLURM_ARRAY_TASK_ID is not set"),
    (("in",), array_env(1, 1, 4), "give an input folder and an output folder"),
    (("", "out"), array_env(1, 1, 4), "must not be empty"),
    (("in", "out"), array_env(3, 1, 7, count=4), "one contiguous range"),
    (("in", "out"), {**array_env(3, 1, 7), "SLURM_ARRAY_TASK_STEP": "2"}, "one contiguous range"),
    (("in", "out"), {"MONOCLE_SHARDS": "8", "SLURM_ARRAY_TASK_ID": "9"}, "must lie in 1-8"),
    (("in", "out"), {"MONOCLE_SHARDS": "0", "SLURM_ARRAY_TASK_ID": "1"}, "MONOCLE_SHARDS must be"),
])
def test_slurm_script_refuses_bad_arrays(tmp_path, args, env, message):
    proc, argv = run_slurm_script(tmp_path, *args, **env)
    assert proc.returncode == 2 and argv is None, (proc.returncode, argv)
    assert message in proc.stderr


def test_slurm_script_is_executable():
    assert os.access(SLURM_SH, os.X_OK)
    assert SLURM_SH.read_text().startswith("#!/usr/bin/env bash\n")
