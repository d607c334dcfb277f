"""Run pytest with what some systems lack taken away (Linux only).

Usage: simulate.py no-proc|no-pidfd [PYTEST ARGS...]

no-pidfd  sets MCP_CONNECTIONS_SIMULATE=no-pidfd (tests/conftest.py removes os.pidfd_open).
no-proc   runs pytest in a private mount namespace (``unshare --mount``; as root, or with a user namespace
          otherwise) where an empty tmpfs hides /proc, with the real procfs bind-mounted elsewhere for
          psutil, the tests' leak checks. Where no namespace can be had, it falls back to the library's
          /proc path seam (tests/conftest.py says which in the run's header).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def namespace_prefix() -> list[str] | None:
    """The unshare command that gives a private mount namespace here, or None."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "--mount", "--propagation", "private"], ["unshare", "--mount", "--map-root-user"]):
        with tempfile.TemporaryDirectory(prefix="real-proc-") as real:
            probe = subprocess.run([*prefix, "sh", "-c", _hide_proc(real, "true")], capture_output=True, check=False)
        if probe.returncode == 0:
            return prefix
    return None


def _hide_proc(real: str, then: str) -> str:
    """A shell line that bind-mounts procfs at ``real``, hides /proc under an empty tmpfs, and runs ``then``."""
    return f"mount --bind /proc {shlex.quote(real)} && mount -t tmpfs none-proc /proc && exec {then}"


def main() -> int:
    mode, pytest_args = sys.argv[1], sys.argv[2:]
    env = dict(os.environ, MCP_CONNECTIONS_SIMULATE=mode)
    command = [sys.executable, "-m", "pytest", *pytest_args]
    if mode == "no-pidfd":
        return subprocess.call(command, env=env)
    if mode != "no-proc":
        raise SystemExit(f"unknown mode {mode!r}: use no-proc or no-pidfd")
    prefix = namespace_prefix()
    if prefix is None:
        return subprocess.call(command, env=env)
    with tempfile.TemporaryDirectory(prefix="real-proc-") as real:
        env["MCP_CONNECTIONS_REAL_PROC"] = real
        return subprocess.call([*prefix, "sh", "-c", _hide_proc(real, shlex.join(command))], env=env)


if __name__ == "__main__":
    sys.exit(main())
