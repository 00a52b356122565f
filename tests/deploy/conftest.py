"""The image, built once per run on the debootstrap base (see tests/deploy/podman.py)."""

from __future__ import annotations

import shutil

import pytest

from tests.deploy.podman import BASE, TAG, sh


@pytest.fixture(scope="session")
def image() -> str:
    """``localhost/classroom:image-test``, built by deploy/build-image.sh on ``BASE``.

    Skipped, with podman's own words, where podman is missing or cannot run a container.
    """
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/image-test.sh installs Debian's)")
    base = sh("scripts/image-test.sh", "base", check=False)
    assert base.returncode == 0, f"no base image {BASE}: {base.stderr[-2000:]}"
    probe = sh("scripts/podman.sh", "run", "--rm", "--network", "host", BASE, "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run containers here: {probe.stderr.strip()[-300:]}")
    built = sh("deploy/build-image.sh", "--tag", TAG, "--build-arg", f"BASE={BASE}", check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return TAG
