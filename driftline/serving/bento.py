"""Build a Bento (BentoML's deployable archive) for one model version: the service, the model, pinned requirements.

The service is ``driftline.serving.service:ModelService``; the Bento carries the driftline package's source, the model
version, ``DRIFTLINE_SERVE_CONFIG`` naming it (with the spec's profiling and auth settings), and the exact
dependency set from ``uv.lock`` (``uv export``). Where the Bento runs, ``DRIFTLINE_PROFILE_STORE`` redirects the
traffic profiles (say to ``s3://bucket/profiles``) and the token's environment variable or Prefect Secret must exist.
``bentoml containerize`` turns it into an image where a Docker daemon is available.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import driftline
from driftline import libs
from driftline.errors import StoreError
from driftline.serving.config import SERVICE, ServeConfig


def pinned_requirements(project_dir: Path) -> list[str]:
    """The project's locked runtime dependencies (no dev group, no hashes), one ``name==version`` per entry."""
    uv = shutil.which("uv")
    if uv is None or not (project_dir / "uv.lock").is_file():
        raise StoreError(f"{project_dir}: building a Bento needs uv and the project's uv.lock to pin requirements")
    result = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", "--no-header"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StoreError(f"{project_dir}: `uv export` failed: {result.stderr.strip()[:500]}")
    lines = (line.split(" #")[0].strip() for line in result.stdout.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-", "."))]


def build(config: ServeConfig, project_dir: Path) -> str:
    """Build a Bento serving ``config.tag`` as ``config`` says; return the Bento's tag."""
    bentoml = libs.bentoml()
    source_root = Path(driftline.__file__).resolve().parent.parent
    from bentoml._internal.bento.build_config import BentoEnvSchema

    requirements = pinned_requirements(project_dir)
    env = config.to_env()
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # building imports the service module, which reads its configuration
    try:
        bento = bentoml.bentos.build(
            SERVICE,
            name=f"{config.model.replace('_', '-')}-service",
            labels={"driftline.model": config.model, "driftline.model-tag": config.tag.replace(":", "-")},
            description=f"driftline service for {config.tag}",
            include=["driftline/**/*.py"],
            envs=[BentoEnvSchema(name=name, value=value) for name, value in env.items()],
            python={"packages": requirements},
            models=[config.tag],
            build_ctx=str(source_root),
        )
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return str(bento.tag)
