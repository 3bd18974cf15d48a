"""monitoring/alertmanager/render-config.sh: the pager's and the dead-man's switch's URLs come from secret files.

The script runs in the prom/alertmanager image's busybox (sh and awk) and on Debian (dash and gawk): both are tried.
The compose entrypoint is run as docker-compose.yml writes it, against Debian's Alertmanager: with the files it
starts and serves the URLs they hold; with one missing it exits 1 naming the file and Alertmanager never starts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.system.processes import ALERTMANAGER, ROOT, base_env, free_port, http, started, wait_for

RENDER = ROOT / "monitoring" / "alertmanager" / "render-config.sh"
CONFIG = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"
BUSYBOX = shutil.which("busybox")
PAGER_URL = "https://events.pager.test/v2/enqueue?routing=a1b2&x=1"
DEADMAN_URL = "https://hc-ping.test/0f1e2d3c-aaaa-bbbb-cccc-123456789abc"


def shells(tmp_path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Debian's /bin/sh with its awk, and busybox's sh with busybox's awk first on PATH (as in the image)."""
    assert BUSYBOX is not None, "busybox is not installed (apt-get install -y busybox; .ci/run does)"
    applets = tmp_path / "busybox-bin"
    applets.mkdir(exist_ok=True)
    for applet in ("sh", "awk"):
        (applets / applet).unlink(missing_ok=True)
        (applets / applet).symlink_to(BUSYBOX)
    return {
        "debian": (["/bin/sh"], base_env()),
        "busybox": ([str(applets / "sh")], base_env(PATH=f"{applets}:/usr/bin:/bin")),
    }


def secret_files(directory: Path, **values: str) -> Path:
    directory.mkdir(exist_ok=True)
    for name, value in values.items():
        (directory / name).write_text(value)
    return directory


def render(tmp_path: Path, shell: str, secrets: Path) -> subprocess.CompletedProcess[str]:
    command, env = shells(tmp_path)[shell]
    return subprocess.run(
        [*command, str(RENDER), str(CONFIG), str(secrets)], capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.parametrize("shell", ["debian", "busybox"])
def test_the_urls_are_written_in_from_the_secret_files_and_nothing_else_changes(tmp_path, shell):
    secrets = secret_files(
        tmp_path / "secrets",
        alertmanager_pager_url=PAGER_URL + "\n",
        alertmanager_deadman_url=DEADMAN_URL + "\r\n",  # written on Windows
    )
    result = render(tmp_path, shell, secrets)
    assert result.returncode == 0, result.stderr
    receivers = {r["name"]: r for r in yaml.safe_load(result.stdout)["receivers"]}
    assert receivers["oncall-webhook"]["webhook_configs"][0]["url"] == PAGER_URL
    assert receivers["deadmans-switch"]["webhook_configs"][0]["url"] == DEADMAN_URL
    source = CONFIG.read_text()
    expected = source.replace("@@SECRET:alertmanager_pager_url@@", PAGER_URL)
    assert result.stdout == expected.replace("@@SECRET:alertmanager_deadman_url@@", DEADMAN_URL)


@pytest.mark.parametrize("shell", ["debian", "busybox"])
@pytest.mark.parametrize(
    ("deadman", "message"),
    [
        (None, "alertmanager_deadman_url is missing"),
        ("", "alertmanager_deadman_url is empty"),
        ("\n", "alertmanager_deadman_url is empty"),
        ("hc-ping.test/no-scheme", "alertmanager_deadman_url is not one http(s) URL"),
        ("https://hc-ping.test/a b", "alertmanager_deadman_url is not one http(s) URL"),
        ("https://hc-ping.test/x'y", "alertmanager_deadman_url is not one http(s) URL"),
    ],
)
def test_a_missing_or_malformed_url_stops_it_naming_the_file(tmp_path, shell, deadman, message):
    values = {"alertmanager_pager_url": PAGER_URL}
    if deadman is not None:
        values["alertmanager_deadman_url"] = deadman
    result = render(tmp_path, shell, secret_files(tmp_path / "secrets", **values))
    assert result.returncode == 1
    assert message in result.stderr
    assert str(tmp_path / "secrets") in result.stderr


def compose_entrypoint(tmp_path: Path, secrets: Path, port: int) -> list[str]:
    """docker-compose.yml's entrypoint and command for Alertmanager, its container paths mapped to this test's."""
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["alertmanager"]
    shell, flag, script, name = service["entrypoint"]
    assert (shell, flag) == ("/bin/sh", "-c")
    script = script.replace("$$", "$")  # compose's escape of a literal $
    paths = {
        "/etc/alertmanager/": f"{ROOT}/monitoring/alertmanager/",
        "/run/secrets": str(secrets),
        "/tmp/": f"{tmp_path}/",  # noqa: S108 (the container's tmpfs)
        "/bin/alertmanager": str(ALERTMANAGER),
    }
    for container in paths:
        assert container in script, f"the entrypoint no longer uses {container}"
    script = re.sub("|".join(map(re.escape, paths)), lambda match: paths[match[0]], script)
    command = [
        flag.replace("/tmp/", f"{tmp_path}/").replace("=/alertmanager", f"={tmp_path}/data")  # noqa: S108
        for flag in service["command"]
    ]
    return [shell, flag, script, name, *command, f"--web.listen-address=127.0.0.1:{port}"]


@pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is not installed (.ci/run installs it)")
def test_the_compose_entrypoint_starts_alertmanager_with_the_urls_of_the_secret_files(tmp_path):
    secrets = secret_files(
        tmp_path / "secrets",
        itsm_alertmanager_token="t",
        alertmanager_smtp_password="p",
        alertmanager_pager_token="t",
        alertmanager_pager_url=PAGER_URL,
        alertmanager_deadman_url=DEADMAN_URL,
    )
    port = free_port()
    with started(compose_entrypoint(tmp_path, secrets, port), base_env(), tmp_path / "am.log"):
        wait_for(f"http://127.0.0.1:{port}/-/ready", timeout=30)
        _, _, status = http("GET", f"http://127.0.0.1:{port}/api/v2/status")
    # Alertmanager shows secrets as <secret>; the URLs it will post to are in its loaded configuration.
    loaded = status["config"]["original"]
    assert PAGER_URL in loaded
    assert DEADMAN_URL in loaded
    assert "@@SECRET" not in loaded


@pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is not installed (.ci/run installs it)")
def test_without_the_dead_mans_switch_url_alertmanager_does_not_start(tmp_path):
    secrets = secret_files(tmp_path / "secrets", alertmanager_pager_url=PAGER_URL)
    result = subprocess.run(
        compose_entrypoint(tmp_path, secrets, free_port()),
        capture_output=True,
        text=True,
        env=base_env(),
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "alertmanager_deadman_url is missing" in result.stderr
    assert "Starting Alertmanager" not in result.stdout + result.stderr
