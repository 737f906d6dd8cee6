"""Build hook: a wheel carries `conf/` and `sweeps/` (kept at the repository's top, where users
look for them) as package data under `lstmpaths/_configs/`, so that `pip install .` works from
any folder. An editable install reads them from the checkout instead."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "lstmpaths" / "_configs"
        for name in ("conf", "sweeps"):
            shutil.copytree(ROOT / name, target / name, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithConfigs})
