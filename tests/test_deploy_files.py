"""No container engine runs here, so keep the Dockerfile and compose file exact by checking what
can be checked: the paths they copy exist, the commands they run are real subcommands, and the
variables they set are settings the bot reads."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from bot.cli import _parser
from infra.settings import DatabaseSettings, DeliverySettings, LocaleSettings, RedisSettings, TelegramSettings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _subcommands() -> set[str]:
    action = next(a for a in _parser()._actions if a.dest == "command")
    return set(action.choices)  # type: ignore[arg-type]


def _setting_names() -> set[str]:
    names: set[str] = set()
    for cls in (TelegramSettings, DatabaseSettings, RedisSettings, LocaleSettings, DeliverySettings):
        names.update(f.alias for f in cls.model_fields.values() if f.alias)
    return names


def test_dockerfile_copies_paths_that_exist() -> None:
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY") and "--from=" not in line:
            *sources, _target = shlex.split(line)[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerfile_runs_a_real_subcommand_as_non_root_with_healthcheck() -> None:
    cmd = json.loads(re.search(r"^CMD (.+)$", DOCKERFILE, re.M).group(1))  # type: ignore[union-attr]
    assert cmd[0] == "hromada-bot" and cmd[1] in _subcommands()
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.M)
    assert "/healthz" in DOCKERFILE and "HEALTHCHECK" in DOCKERFILE
    assert DOCKERFILE.count("FROM ") >= 2, "multi-stage"
    assert "compile_locales" in DOCKERFILE, "translations compiled in the build"


@pytest.mark.parametrize("service", ["migrate", "bot"])
def test_compose_commands_and_variables_are_real(service: str) -> None:
    spec = COMPOSE["services"][service]
    assert spec["command"][0] == "hromada-bot" and spec["command"][1] in _subcommands()
    unknown = set(spec["environment"]) - _setting_names()
    assert unknown == set(), f"compose sets variables the bot does not read: {unknown}"


def test_compose_runs_migration_once_before_the_bot() -> None:
    services = COMPOSE["services"]
    assert services["migrate"]["restart"] == "no"
    assert services["bot"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["bot"]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert services["bot"]["environment"]["REDIS_URL"].startswith("redis://")
