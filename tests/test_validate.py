"""`make validate`'s command on its smallest cell (CI runs this one; the full grid is `make
validate`): the tool as a user runs it, scored against the planted truth."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN


@pytest.mark.slow
def test_the_smallest_validation_cell(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "lstmpaths-validate"), "--signs", "24", "--recordings", "12", "--seeds", "0",
         "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:6] == ["signs", "recs", "seed", "precision", "recall", "undecided"]
    signs, recs, seed, precision, recall, undecided, planted = lines[1].split()[:7]
    assert (signs, recs, seed) == ("24", "12", "0")
    precision, recall, undecided, planted = map(float, (precision, recall, undecided, planted))
    assert planted == 3  # the generator's truth scaled to 24 signs
    # never a wrong pair called robust: too few seeds make a pair undecided instead
    assert precision >= 0.9, done.stdout
    # recall is printed to 3 decimals (2/3 shows as 0.667): count the found pairs back
    assert round(recall * planted) + undecided <= planted, done.stdout
    assert re.fullmatch(
        r"validation: worst precision \d\.\d{3}, worst recall \d\.\d{3} over 1 cells", lines[-1]
    )
    # the exit status says whether the cell met the goal
    met = precision >= 0.9 and recall >= 0.8
    assert done.returncode == (0 if met else 1), done.stderr[-2000:]
    assert (tmp_path / "s24-r12-g0" / "report" / "report.md").is_file()


def test_cells_that_meet_the_goal_leave_no_folder_behind(tmp_path, monkeypatch, capsys) -> None:
    """Without --keep, each cell's store (a whole sweep) goes to a temporary folder: removed for
    a cell that met the goal, kept for one that missed it, so a user can look into it."""
    from lstmpaths import validate

    def cell(signs, recordings, seed, dae_seeds, folder, jobs) -> dict:
        (folder / "mlflow.db").write_bytes(b"a store")
        recall = 1.0 if signs == 24 else 0.5  # the 48-sign cell misses the goal
        own = {"precision": 1.0, "recall": recall, "undecided": 0}
        return {"own_nearest": own, "planted": 2, "missed": [], "unplanted": []}

    monkeypatch.setattr(validate, "run_cell", cell)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(validate.tempfile, "tempdir", None)  # read TMPDIR again
    assert validate.main(["--signs", "24", "--recordings", "12", "--seeds", "0,1"]) == 0
    assert not list(tmp_path.iterdir())
    assert validate.main(["--signs", "24,48", "--recordings", "12", "--seeds", "0"]) == 1
    (root,) = tmp_path.iterdir()
    assert sorted(p.name for p in root.iterdir()) == ["s48-r12-g0"]
    assert f"stores and reports in {root}" in capsys.readouterr().err
