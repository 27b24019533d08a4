import json

import pytest

from mlrepro.errors import MlreproError
from mlrepro.reporting import BEGIN, END, update_readme


def test_table_is_generated_between_markers(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "linreg-line.json").write_text(
        json.dumps(
            {
                "experiment": "linreg-line",
                "preset": "default",
                "claim": "R² 0.998 (blog)",
                "headline": ["test_r2"],
                "n": 3,
                "metrics": {"test_r2": {"mean": 0.99912, "std": 0.0002, "values": [1, 2, 3]}},
                "wall_time_s": 4.2,
                "hardware": {"cpu_count": 2, "processor": "x86_64"},
                "torch": "2.13.0",
                "command": "mlrepro run linreg-line --seeds 0,1,2",
            }
        )
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"# T\n{BEGIN}\nold table\n{END}\nafter\n")
    assert update_readme(readme, res) == 1
    text = readme.read_text()
    assert "old table" not in text and text.endswith(f"{END}\nafter\n")
    assert "| linreg-line | default | R² 0.998 (blog) | test_r2 0.9991 ± 0.0002 | 3 | 4 s |" in text
    assert "`mlrepro run linreg-line --seeds 0,1,2`" in text


def test_missing_markers_or_bad_file_is_a_clear_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers")
    with pytest.raises(MlreproError, match="no '<!-- results:begin -->'"):
        update_readme(readme, tmp_path)
    readme.write_text(f"{BEGIN}{END}")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(MlreproError, match="bad.json: not a results summary"):
        update_readme(readme, tmp_path)


def test_metric_missing_in_some_or_all_runs_is_shown_as_such(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    base = {
        "preset": "default",
        "claim": "",
        "n": 3,
        "wall_time_s": 1.0,
        "hardware": {},
        "torch": "2.13.0",
        "command": "c",
    }
    (res / "a.json").write_text(
        json.dumps(
            {
                **base,
                "experiment": "a",
                "headline": ["r", "s"],
                "metrics": {
                    "r": {"mean": None, "std": None, "values": [], "missing": 3},
                    "s": {"mean": 0.5, "std": 0.0, "values": [0.5], "missing": 2},
                },
            }
        )
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}{END}")
    update_readme(readme, res)
    text = readme.read_text()
    assert "r n/a in all 3 runs" in text and "s 0.5000 ± 0.0000 (n/a in 2 of 3 runs)" in text


def test_aggregated_seeds_show_a_per_seed_command_without_local_paths(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    runs = [
        f"mlrepro run mnist-cnn --seed {s} --threads 1 --out /tmp/x{s} --data-dir /data --lr 0.1"
        for s in (0, 1)
    ] + ["mlrepro run mnist-cnn --seed 2 --out runs/y"]
    (res / "mnist-cnn.json").write_text(
        json.dumps(
            {
                "experiment": "mnist-cnn",
                "preset": "default",
                "headline": ["acc"],
                "n": 3,
                "metrics": {"acc": {"mean": 0.99, "std": 0.001, "values": [1, 2, 3]}},
                "wall_time_s": 9.0,
                "hardware": {"cpu_count": 2},
                "torch": "2.13.0",
                "command": "mlrepro aggregate /tmp/x0/a /tmp/x1/b runs/y/c",
                "run_commands": runs,
            }
        )
    )
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    update_readme(readme, res)
    text = readme.read_text()
    assert "`mlrepro run mnist-cnn --seed S` for each seed S, then `mlrepro aggregate`" in text
    assert "/tmp/" not in text and "runs/y" not in text


def dqn_summary(**fields) -> dict:
    """A dqn-vizdoom results summary with `fields` set."""
    base = {"experiment": "dqn-vizdoom", "headline": ["test_score"], "wall_time_s": 2000}
    return {**base, "torch": "2.13.0", **fields}


def test_a_tagged_result_names_its_task_beside_the_experiment(tmp_path):
    from mlrepro.reporting import results_table

    res = tmp_path / "results"
    res.mkdir()
    row = dqn_summary(
        preset="default",
        claim="beats random",
        n=3,
        metrics={"test_score": {"mean": 7.5, "std": 0.5, "values": [7, 7.5, 8]}},
        hardware={"cpu_count": 2, "processor": "x86_64"},
        command="mlrepro run dqn-vizdoom --scenario defend_the_center --seeds 0,1,2",
    )
    (res / "dqn-vizdoom.basic.json").write_text(json.dumps({**row, "tag": "basic"}))
    (res / "dqn-vizdoom.defend_the_center.json").write_text(
        json.dumps({**row, "tag": "defend_the_center"})
    )
    table, n = results_table(res)
    assert n == 2
    assert "| dqn-vizdoom (basic) | default |" in table
    assert "| dqn-vizdoom (defend_the_center) | default |" in table


def test_a_summary_relabelled_to_a_preset_shows_a_command_that_names_it(tmp_path):
    # Made with the default of its day and relabelled when the default changed: the runs' own
    # commands lack --preset, and the row must not tell readers to run today's default.
    from mlrepro.reporting import results_table

    res = tmp_path / "results"
    res.mkdir()
    row = dqn_summary(
        preset="epsilon",
        tag="basic",
        relabelled={"from": "default", "date": "2026-12-06"},
        n=2,
        metrics={"test_score": {"mean": 79.0, "std": 1.0, "values": [78, 80]}},
        hardware={"cpu_count": 2},
        command="mlrepro aggregate /tmp/a /tmp/b",
        run_commands=[
            f"mlrepro run dqn-vizdoom --scenario basic --seed {s} --out /tmp/r" for s in (0, 1)
        ],
    )
    (res / "dqn-vizdoom.basic.epsilon.json").write_text(json.dumps(row))
    (res / "mnist-cnn.quick.json").write_text(
        json.dumps(
            {
                **row,
                "experiment": "mnist-cnn",
                "preset": "quick",
                "tag": None,
                "command": "mlrepro run mnist-cnn --quick --seeds 0,1",
                "run_commands": None,
            }
        )
    )
    table, _ = results_table(res)
    assert (
        "`mlrepro run dqn-vizdoom --preset epsilon --scenario basic --seed S` for each seed S"
        in table
    )
    assert "`mlrepro run mnist-cnn --quick --seeds 0,1`" in table  # named by its shortcut
