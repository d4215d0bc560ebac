"""Shared fixtures of the Python package's tests (tests/python, CTest label ``python``).

CTest runs them with PYTHONPATH at the build's package folder (build/python), DEMIX_CLI at the
built command line and DEMIX_SHARED_DIR at the shared data; run by hand:
``PYTHONPATH=build/python DEMIX_CLI=build/demix /usr/bin/python3 -m pytest tests/python``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def shared_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("DEMIX_SHARED_DIR", ROOT.parent / "shared"))


def shared_file(relative: str) -> pathlib.Path:
    """A file of the shared folder; a missing one fails the test (as the C++ regression tests
    do), naming the variable that points to the folder."""
    path = shared_dir() / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: set DEMIX_SHARED_DIR to the shared folder")
    return path


@pytest.fixture(scope="session")
def dust() -> np.ndarray:
    """The shared dust map I_1 (float64 as stored)."""
    return np.load(shared_file("data/dust/I_1.npy"))


@pytest.fixture(scope="session")
def dust128(dust: np.ndarray) -> np.ndarray:
    """Its top-left 128 x 128 crop, log and standardised (the CLI's --log --standardize)."""
    x = np.log(dust[:128, :128].astype(np.float64))
    return (x - x.mean()) / x.std()


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The built ``demix`` program (DEMIX_CLI), for comparisons with the command line."""
    path = os.environ.get("DEMIX_CLI")
    if not path:
        pytest.skip("DEMIX_CLI is not set (CTest sets it to the built demix program)")
    if not pathlib.Path(path).exists():
        pytest.fail(f"DEMIX_CLI={path} does not exist")
    return pathlib.Path(path)


def run_cli(cli: pathlib.Path, *args: str) -> None:
    r = subprocess.run([str(cli), *args], capture_output=True, text=True)
    assert r.returncode == 0, f"demix {' '.join(args)} exited {r.returncode}: {r.stderr}"
