"""The Debian package: built with CPack from the build directory, inspected with dpkg-deb,
extracted into a scratch root, and its systemd unit checked there (verify + security score).

Builds nothing: it packages the build directory whose bin/ is TW_BIN_DIR (only the
`tokenwarden` target is needed). Needs cpack (cmake), dpkg-deb, dpkg-shlibdeps (dpkg-dev) and
systemd-analyze (systemd): `scripts/install-deps --test-tools`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from twtest import BIN_DIR, SOURCE_DIR

BUILD_DIR = BIN_DIR.parent
UNIT = "lib/systemd/system/tokenwarden.service"
CONFIG = "etc/tokenwarden/tokenwarden.toml"
MAN = "usr/share/man/man8/tokenwarden.8.gz"
DOC = "usr/share/doc/tokenwarden"
MAX_EXPOSURE = 2.0  # SPEC §6
# Every audit event kind, as core/audit_event.cpp names them.
EVENT_KINDS = re.findall(r'"([a-z_]+)"', (SOURCE_DIR / "core" / "audit_event.cpp").read_text()
                         .split("kNames{", 1)[1].split("};", 1)[0])

REQUIRED_TOOLS = ("cpack", "dpkg-deb", "dpkg-shlibdeps", "systemd-analyze")
missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"missing {', '.join(missing)} (run scripts/install-deps --test-tools)")


def run(args, **kwargs):
    kwargs.setdefault("timeout", 300)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)


def project_version() -> str:
    text = (BUILD_DIR / "CPackConfig.cmake").read_text()
    return re.search(r'set\(CPACK_PACKAGE_VERSION "([^"]+)"\)', text).group(1)


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    if not (BUILD_DIR / "CPackConfig.cmake").exists():
        pytest.fail(f"{BUILD_DIR}/CPackConfig.cmake is missing: cmake/Packaging.cmake not configured")
    if not (BIN_DIR / "tokenwarden").exists():
        pytest.fail(f"{BIN_DIR}/tokenwarden is missing: build the tokenwarden target first")
    out = tmp_path_factory.mktemp("cpack")
    proc = run(["cpack", "-G", "DEB", "-B", out], cwd=BUILD_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    debs = sorted(out.glob("*.deb"))
    assert [d.name for d in debs] == [f"tokenwarden_{project_version()}_amd64.deb"], proc.stdout
    return debs[0]


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory) -> Path:
    """The package extracted as dpkg would install it, into a scratch root."""
    path = tmp_path_factory.mktemp("root")
    proc = run(["dpkg", "-x", deb, path])
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def contents(deb) -> dict[str, tuple[str, str]]:
    """path (without ./ and trailing /) -> (mode string, owner/group)"""
    proc = run(["dpkg-deb", "--contents", deb])
    assert proc.returncode == 0, proc.stderr
    entries = {}
    for line in proc.stdout.splitlines():
        fields = line.split(None, 5)
        entries[fields[5].removeprefix("./").rstrip("/")] = (fields[0], fields[1])
    return entries


def control_fields(deb) -> dict[str, str]:
    proc = run(["dpkg-deb", "--field", deb])
    assert proc.returncode == 0, proc.stderr
    fields, key = {}, None
    for line in proc.stdout.splitlines():
        if line.startswith(" ") and key:
            fields[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


# --- The package ------------------------------------------------------------------------------

def test_control_fields(deb):
    f = control_fields(deb)
    assert f["Package"] == "tokenwarden"
    assert f["Version"] == project_version()
    assert f["Architecture"] == "amd64"
    assert f["Section"] == "admin"
    assert "@" in f["Maintainer"]
    assert f["Description"].startswith("InfluxDB 3 database token auditor")
    depends = f["Depends"]
    for lib in ("libc6", "libstdc++6", "libsqlite3-0", "libssl3", "libre2-9", "libsimdjson14"):
        assert lib in depends, f"Depends lacks {lib}: {depends}"


def test_conffile_and_maintainer_scripts(deb, tmp_path):
    ctrl = tmp_path / "DEBIAN"
    proc = run(["dpkg-deb", "--control", deb, ctrl])
    assert proc.returncode == 0, proc.stderr
    assert (ctrl / "conffiles").read_text().split() == ["/" + CONFIG]
    for name in ("postinst", "prerm", "postrm"):
        script = ctrl / name
        assert os.access(script, os.X_OK), f"{name} is not executable"
        assert run(["sh", "-n", script]).returncode == 0, f"{name}: syntax error"
        text = script.read_text()
        # Never start or enable the service from a maintainer script.
        for line in text.splitlines():
            if re.match(r"\s*(systemctl|deb-systemd-invoke|invoke-rc\.d)\b", line):
                assert not re.search(r"\b(start|restart|enable|reload-or-restart)\b", line), \
                    f"{name} starts or enables the service: {line.strip()}"
    assert "daemon-reload" in (ctrl / "postinst").read_text()
    assert "daemon-reload" in (ctrl / "postrm").read_text()
    assert "/run/systemd/system" in (ctrl / "postinst").read_text()


def test_file_list(contents):
    docs = [f"{DOC}/{p.name}" for p in sorted([*(SOURCE_DIR / "docs").glob("*.md"), *(SOURCE_DIR / "docs").glob("*.json")])]
    prometheus = [f"{DOC}/examples/prometheus/{p.name}"
                  for p in sorted((SOURCE_DIR / "config" / "prometheus").glob("*.yml"))]
    required = {
        "usr/bin/tokenwarden": "-rwxr-xr-x",
        "usr/bin/tokenwarden-sim": "-rwxr-xr-x",
        CONFIG: "-rw-r--r--",
        "etc/tokenwarden/credentials": "drwx------",
        UNIT: "-rw-r--r--",
        MAN: "-rw-r--r--",
        "usr/lib/systemd/catalog/tokenwarden.catalog": "-rw-r--r--",
        f"{DOC}/README.md": "-rw-r--r--",
        f"{DOC}/operations.md": "-rw-r--r--",
        f"{DOC}/examples/tokenwarden.toml": "-rw-r--r--",
        f"{DOC}/examples/policies.toml": "-rw-r--r--",
        f"{DOC}/examples/prometheus/tokenwarden.rules.yml": "-rw-r--r--",
        **{d: "-rw-r--r--" for d in docs + prometheus},
    }
    for path, mode in required.items():
        assert path in contents, f"{path} is not in the package"
        assert contents[path] == (mode, "root/root"), f"{path}: {contents[path]}"
    for path, (mode, owner) in contents.items():
        assert owner == "root/root", path
        assert path.split("/")[0] in {".", "", "etc", "lib", "usr"}, f"unexpected {path}"
        assert not path.startswith("usr/local"), path
    # tokenwarden-sim is packaged: `tokenwarden demo` runs it (docs/simulator.md). The influxctl
    # look-alike is a test tool, deliberately not packaged.
    assert not [p for p in contents if "influxctl" in p]
    binaries = sorted(p for p, (m, _) in contents.items() if p.startswith("usr/bin/") and m[0] == "-")
    assert binaries == ["usr/bin/tokenwarden", "usr/bin/tokenwarden-sim"]


def test_installed_journal_catalog_is_accepted_by_journalctl(root):
    """The journald sink's MESSAGE_IDs: journalctl compiles the packaged catalog and lists one
    entry per audit event kind (the ids themselves are checked against the code in unit_export)."""
    if shutil.which("journalctl") is None:
        pytest.skip("journalctl is not installed")
    proc = run(["journalctl", "--root", root, "--update-catalog"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = run(["journalctl", "--root", root, "--list-catalog"], timeout=60)
    assert listed.returncode == 0, listed.stderr
    ours = [line for line in listed.stdout.splitlines() if "tokenwarden: audit event " in line]
    events = sorted(re.search(r"audit event (\w+):", line).group(1) for line in ours)
    assert events == sorted(EVENT_KINDS), events
    ids = [line.split()[0] for line in ours]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_installed_binary_runs(root):
    proc = run([root / "usr/bin/tokenwarden", "--version"], timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tokenwarden {project_version()}"


def cache_value(name: str) -> str:
    m = re.search(rf"^{name}:\w+=(.*)$", (BUILD_DIR / "CMakeCache.txt").read_text(), re.M)
    return m.group(1) if m else ""


def test_installed_binary_is_hardened(root):
    """PIE, RELRO, BIND_NOW, stack protector, _FORTIFY_SOURCE (TW_HARDEN), stripped or not."""
    if (cache_value("TW_HARDEN") != "ON" or cache_value("TW_SANITIZE") == "ON"
            or cache_value("CMAKE_BUILD_TYPE") in ("", "Debug")):
        pytest.skip("not an optimized TW_HARDEN build (the release and ci presets are)")
    proc = run([SOURCE_DIR / "scripts/check-hardening", root / "usr/bin/tokenwarden"], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_installed_config_validates_and_finds_credentials(root, tmp_path):
    exe, config = root / "usr/bin/tokenwarden", root / CONFIG
    env = {k: v for k, v in os.environ.items() if k not in ("CREDENTIALS_DIRECTORY", "TOKENWARDEN_CONFIG")}
    proc = run([exe, "--config", config, "check-config"], env=env, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'clusters[0].token_file: "prod-eu.token" is not readable' in proc.stderr
    # As under systemd: LoadCredential= puts prod-eu.token into $CREDENTIALS_DIRECTORY.
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "prod-eu.token").write_text("not-a-real-token\n")
    (creds / "prod-eu.token").chmod(0o600)
    proc = run([exe, "--config", config, "check-config"], env={**env, "CREDENTIALS_DIRECTORY": str(creds)},
               timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clusters[0].token_file" not in proc.stderr
    assert "not-a-real-token" not in proc.stdout + proc.stderr


def test_man_page_documents_every_command(root):
    page = root / MAN
    proc = run(["gzip", "-dc", page])
    assert proc.returncode == 0
    source = proc.stdout
    title = next(line for line in source.splitlines() if line.startswith(".TH"))
    assert f'"tokenwarden {project_version()}"' in title, title
    help_text = run([root / "usr/bin/tokenwarden", "--help"], timeout=30).stdout
    commands = re.findall(r"^  ([a-z][a-z-]+)\s{2,}", help_text.split("Subcommands:", 1)[1], re.M)
    assert len(commands) >= 10, help_text
    documented = set(re.findall(r"^\.TP\n\.BR? ([a-z][a-z\\-]+)", source.split(".SH COMMANDS", 1)[1]
                                .split(".SH SIGNALS", 1)[0], re.M))
    documented = {c.replace("\\-", "-") for c in documented}
    assert set(commands) <= documented, f"not in the man page: {sorted(set(commands) - documented)}"
    for section in ("SYNOPSIS", "OPTIONS", "COMMANDS", "SIGNALS", "ENVIRONMENT", "FILES",
                    "EXIT STATUS", "SEE ALSO"):
        assert f".SH {section}" in source
    for word in ("TOKENWARDEN_CONFIG", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "SIGHUP", "SIGTERM"):
        assert word in source
    if shutil.which("man"):
        proc = run(["man", "--warnings", "-l", page], env={**os.environ, "MANWIDTH": "100",
                                                           "MAN_KEEP_FORMATTING": "0"})
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip() == "", proc.stderr


# --- The installed systemd unit ---------------------------------------------------------------

def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_is_the_source_unit_with_spec_settings(root):
    installed = (root / UNIT).read_text()
    assert installed == (SOURCE_DIR / "systemd" / "tokenwarden.service").read_text()
    s = unit_settings(installed)
    expected = {
        "Type": "notify", "NotifyAccess": "main",
        "ExecStart": "/usr/bin/tokenwarden --config /etc/tokenwarden/tokenwarden.toml run",
        "ExecReload": "/bin/kill -HUP $MAINPID", "WatchdogSec": "30s", "Restart": "on-failure",
        "TimeoutStopSec": "20s", "DynamicUser": "yes", "StateDirectory": "tokenwarden",
        "StateDirectoryMode": "0700", "ConfigurationDirectory": "tokenwarden", "UMask": "0077",
        "CapabilityBoundingSet": "", "ProtectSystem": "strict", "PrivateUsers": "yes",
        "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], f"{key}={s.get(key)}"
    assert "LoadCredential" in s
    assert all(v.split(":", 1)[1].startswith("/etc/tokenwarden/credentials/") for v in s["LoadCredential"])
    families = " ".join(s["RestrictAddressFamilies"]).split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]


def test_installed_unit_verifies(root, tmp_path):
    """systemd-analyze verify checks every setting, that ExecStart/ExecReload are executable and
    that the Documentation= man page exists. The unit runs /usr/bin/tokenwarden, which is in the
    scratch root, not on this host: verify a copy whose only change is that path, and look the man
    page up in the scratch root."""
    installed = (root / UNIT).read_text()
    copy = installed.replace("ExecStart=/usr/bin/tokenwarden ", f"ExecStart={root}/usr/bin/tokenwarden ")
    changed = [(a, b) for a, b in zip(installed.splitlines(), copy.splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith("ExecStart="), changed
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    (unit_dir / "tokenwarden.service").write_text(copy)
    args = ["systemd-analyze", "verify"]
    if shutil.which("man") is None:
        args.append("--man=no")
    proc = run([*args, unit_dir / "tokenwarden.service"],
               env={**os.environ, "MANPATH": str(root / "usr/share/man")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (proc.stdout + proc.stderr).strip() == "", proc.stdout + proc.stderr
    # The check has teeth: the same copy without the binary fails.
    (unit_dir / "tokenwarden.service").write_text(
        copy.replace(f"ExecStart={root}/usr/bin/tokenwarden ", f"ExecStart={tmp_path}/nonexistent "))
    proc = run([*args, unit_dir / "tokenwarden.service"],
               env={**os.environ, "MANPATH": str(root / "usr/share/man")})
    assert proc.returncode != 0 and "is not executable" in proc.stdout + proc.stderr


def test_installed_unit_exposure(root):
    proc = run(["systemd-analyze", "security", "--offline=true", "--no-pager", root / UNIT])
    out = proc.stdout + proc.stderr
    m = re.search(r"Overall exposure level for tokenwarden\.service: (\d+\.\d+)", out)
    assert m, out
    exposure = float(m.group(1))
    print(f"systemd-analyze security: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, out
