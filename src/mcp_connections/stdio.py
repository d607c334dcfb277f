"""A connection to an MCP server that runs as a child process and speaks JSON-RPC lines on stdin/stdout.

Design: the SDK's ``stdio_client`` hands ``errlog`` to the child as its stderr, which needs a real file
descriptor (``UnsupportedOperation: fileno`` under notebooks and test runners) and keeps nothing for
error messages. This transport pipes stderr instead and reads it in a task of its own: every line goes
to ``errlog`` as it comes and into a bounded tail that error messages quote, and the pipe is always
drained so a server that floods stderr never stalls. Four tasks run beside the connection: stdout to the
session (one JSON-RPC message per line), the session to stdin, stderr to ``errlog``, and an exit
watcher that notices the server's death at once (a pidfd on Linux, a kqueue on macOS), even while a
grandchild holds the pipes open.

The server runs in a process tree of its own (a process group; a Job Object on Windows), through the
platform backends of ``_process``. ``stop()`` follows the MCP spec's shutdown: close stdin, wait, SIGTERM
the whole group, wait, SIGKILL the whole group (on Windows: close stdin, wait, terminate the job); every
wait is scaled to ``stop()``'s timeout, the sequence runs shielded from cancellation, and whatever fails
inside it, the whole tree is killed, so nothing outlives it. Line framing is ``_framing``'s, shared with
the WebSocket transport.
"""

from __future__ import annotations

import codecs
import errno
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.stdio import StdioServerParameters, get_default_environment
from mcp.shared.message import SessionMessage

from . import _process
from ._framing import LineReader, parse_message
from ._process import ProcessTree
from ._textsink import TextSink
from .base import ConnectionManager
from .errors import ConnectionLostError, ServerExitedError, ServerStartError

__all__ = ["LineReader", "StdioConnectionManager", "StdioStreams"]

logger = logging.getLogger(__name__)

StdioStreams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]

# After the server exits, time for its last stdout and stderr bytes to arrive before the loss is
# reported, so pending answers are delivered and the error quotes the final stderr lines.
EXIT_DRAIN_TIMEOUT = 0.5

# How much stderr (characters of text, at most as many bytes in UTF-8) error messages can quote.
STDERR_TAIL_CHARS = 64 * 1024

# Stderr lines quoted in an error message.
_ERROR_TAIL_LINES = 10


class StdioConnectionManager(ConnectionManager[StdioStreams]):
    """Runs an MCP server as a child process and connects to it over stdin/stdout.

    The connection is ``(read_stream, write_stream)``, ready for ``mcp.ClientSession(read, write)``.
    ``pid``, ``returncode`` and ``stderr_tail`` describe the current (or last) server process.
    """

    def __init__(
        self,
        server_params: StdioServerParameters,
        errlog: TextSink | None = sys.stderr,
        *,
        inherit_env: bool | Sequence[str] = False,
        name: str | None = None,
    ) -> None:
        """``inherit_env`` opts in to more of the caller's environment than the SDK's safe default (``HOME``,
        ``PATH``, ``USER``...): ``True`` for all of it, or the names of the variables to pass on. Without it
        a server never sees the caller's secrets (``AWS_*``, tokens) unless ``server_params.env`` names them.
        ``name`` is how errors and logs name the server (default: its command line). ``errlog`` gets the
        server's stderr as it comes: anything with ``write(str)`` and ``flush()``, or ``None`` to discard it
        (``stderr_tail`` keeps its end either way).
        """
        super().__init__(name=name)
        self.server_params = server_params
        self.errlog = errlog
        self.inherit_env = inherit_env
        self.command_line = describe_command(server_params.command, server_params.args)
        self.name = name or self.command_line
        self._tree: ProcessTree | None = None
        self._returncode: int | None = None
        self._tail = _StderrTail(STDERR_TAIL_CHARS)

    @property
    def pid(self) -> int | None:
        """The server's process id, while it runs or after it ended; None before the first start."""
        return self._tree.pid if self._tree is not None else None

    @property
    def returncode(self) -> int | None:
        """The server's exit code once it has exited (negative: killed by that signal), else None."""
        return self._returncode

    @property
    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr, at most 64 KiB."""
        return self._tail.text()

    # -- the transport -------------------------------------------------------------------------------

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[StdioStreams]:
        params = self.server_params
        self._tail = _StderrTail(STDERR_TAIL_CHARS)
        self._returncode = None
        tree = await self._spawn(params)
        self._tree = tree
        process = tree.process
        # No await between the spawn and the shielded cleanup below, or a cancellation in the gap
        # would leak the live process.
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
        exited = anyio.Event()
        stdout_done = anyio.Event()
        stderr_done = anyio.Event()
        ended = anyio.Event()  # the server exited or its stdout closed, whichever came first
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_exit, tree, exited, ended)
                tg.start_soon(self._read_stdout, process, read_writer, stdout_done, ended)
                tg.start_soon(self._write_stdin, process, write_reader)
                tg.start_soon(self._read_stderr, process, stderr_done)
                tg.start_soon(self._report_exit, process, read_writer, ended, exited, stdout_done, stderr_done)
                try:
                    yield read_stream, write_stream
                finally:
                    with anyio.CancelScope(shield=True):
                        await _process.shut_down(tree, exited, self._stop_budget, self.name)
                        # The last stderr bytes, for stderr_tail; the pipe closes when the tree is dead.
                        with anyio.move_on_after(EXIT_DRAIN_TIMEOUT if exited.is_set() else 0):
                            await stderr_done.wait()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                for stream in (read_writer, read_stream, write_stream, write_reader):
                    stream.close()
                await tree.release()
                if tree.returncode is not None:
                    self._returncode = tree.returncode

    async def _spawn(self, params: StdioServerParameters) -> ProcessTree:
        cwd = Path(params.cwd) if params.cwd is not None else None
        env = get_default_environment() | self._inherited_env() | (params.env or {})
        try:
            return await _process.spawn([params.command, *params.args], cwd=cwd, env=env)
        except NotImplementedError as exc:  # asyncio's SelectorEventLoop on Windows
            raise ServerStartError(
                f"cannot start {params.command!r}: this event loop cannot run subprocesses. On Windows, use "
                "asyncio's default ProactorEventLoop (do not set WindowsSelectorEventLoopPolicy).",
                server=self.name,
            ) from exc
        except OSError as exc:
            raise ServerStartError(_explain_spawn_error(exc, params.command, cwd, env), server=self.name) from exc
        except ValueError as exc:  # embedded NUL bytes and the like
            raise ServerStartError(f"invalid command line: {exc}", server=self.name) from exc

    def _inherited_env(self) -> dict[str, str]:
        if self.inherit_env is True:
            return dict(os.environ)
        if not self.inherit_env:
            return {}
        return {name: os.environ[name] for name in self.inherit_env if name in os.environ}

    async def _watch_exit(self, tree: ProcessTree, exited: anyio.Event, ended: anyio.Event) -> None:
        """Set ``exited`` (and ``ended``) as soon as the server process has exited."""
        await tree.wait_exit()
        self._returncode = tree.returncode
        exited.set()
        ended.set()

    async def _report_exit(
        self,
        process: anyio.abc.Process,
        read_writer: MemoryObjectSendStream[SessionMessage | Exception],
        ended: anyio.Event,
        exited: anyio.Event,
        stdout_done: anyio.Event,
        stderr_done: anyio.Event,
    ) -> None:
        """Turn the server's own exit, or its closing stdout, into a lost connection."""
        await ended.wait()
        if not exited.is_set():
            # Stdout ended first: give the process a moment to finish exiting, as it usually is.
            with anyio.move_on_after(EXIT_DRAIN_TIMEOUT):
                await exited.wait()
        if exited.is_set():
            with anyio.move_on_after(EXIT_DRAIN_TIMEOUT):
                await stdout_done.wait()
                await stderr_done.wait()
            error: ConnectionLostError = self._exit_error(self._returncode)
        else:
            error = ConnectionLostError(
                f"the server (pid {process.pid}) closed its stdout but is still running; "
                "it will be stopped. A server must keep stdout open for the whole session.",
                server=self.name,
            )
        self._connection_lost(error)
        # End the read stream so that pending requests fail now instead of hanging.
        read_writer.close()

    def _exit_error(self, returncode: int | None) -> ServerExitedError:
        tail = self.stderr_tail
        how = _describe_returncode(returncode)
        lines = tail.rstrip("\n").splitlines()[-_ERROR_TAIL_LINES:]
        quoted = "\n".join(f"    {line}" for line in lines)
        detail = f"; last stderr lines:\n{quoted}" if lines else "; it wrote nothing to stderr"
        what = "the server" if self.name == self.command_line else f"the server ({self.command_line})"
        return ServerExitedError(
            f"{what} {how}{detail}\nRun the command by hand to see why it stops.",
            server=self.name,
            returncode=returncode,
            stderr_tail=tail,
        )

    async def _read_stdout(
        self,
        process: anyio.abc.Process,
        sink: MemoryObjectSendStream[SessionMessage | Exception],
        done: anyio.Event,
        ended: anyio.Event,
    ) -> None:
        assert process.stdout is not None
        params = self.server_params
        reader = LineReader(params.encoding, params.encoding_error_handler)
        try:
            async for chunk in process.stdout:
                for item in reader.feed(chunk):
                    await sink.send(item if isinstance(item, Exception) else parse_message(item, "line", logger))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass  # our shutdown closed the pipe, or the session is gone
        finally:
            done.set()
            ended.set()

    async def _write_stdin(self, process: anyio.abc.Process, source: MemoryObjectReceiveStream[SessionMessage]) -> None:
        assert process.stdin is not None
        params = self.server_params
        try:
            async with source:
                async for message in source:
                    line = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(line.encode(params.encoding, params.encoding_error_handler))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            # The server closed its stdin or died; the exit watcher reports why.
            pass

    async def _read_stderr(self, process: anyio.abc.Process, done: anyio.Event) -> None:
        assert process.stderr is not None
        decoder = codecs.getincrementaldecoder(self.server_params.encoding)(errors="replace")
        pending = ""
        try:
            async for chunk in process.stderr:
                text = pending + decoder.decode(chunk)
                cut = text.rfind("\n") + 1
                pending = text[cut:]
                if len(pending) > STDERR_TAIL_CHARS:  # a line with no end in sight: pass it on anyway
                    cut, pending = len(text), ""
                if cut:
                    self._emit_stderr(text[:cut])
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass
        finally:
            if pending:
                self._emit_stderr(pending + "\n")
            done.set()

    def _emit_stderr(self, text: str) -> None:
        self._tail.add(text)
        if self.errlog is None:
            return
        try:
            self.errlog.write(text)
            self.errlog.flush()
        except (OSError, ValueError) as exc:  # closed or broken errlog: keep draining the pipe regardless
            logger.debug("%s: could not write server stderr to errlog: %s", self.name, exc)


class _StderrTail:
    """The last ``limit`` characters of a text stream, cut at a line start when possible."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._text = ""

    def add(self, text: str) -> None:
        self._text += text
        if len(self._text) > 2 * self._limit:
            self._text = self._text[-self._limit :]

    def text(self) -> str:
        text = self._text[-self._limit :]
        while len(text.encode("utf-8", "replace")) > self._limit:
            text = text[len(text) // 8 :]
        if len(text) < len(self._text) and "\n" in text[:-1]:
            text = text[text.index("\n") + 1 :]
        return text


def describe_command(command: str, args: list[str]) -> str:
    """The command line as a person would type it, shortened to a readable length."""
    text = subprocess.list2cmdline([command, *args]) if os.name == "nt" else shlex.join([command, *args])
    return text if len(text) <= 120 else text[:117] + "..."


def _describe_returncode(returncode: int | None) -> str:
    if returncode is None:
        return "exited"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def _explain_spawn_error(exc: OSError, command: str, cwd: Path | None, env: dict[str, str]) -> str:
    filename = getattr(exc, "filename", None)
    if cwd is not None and (not cwd.is_dir()) and filename in (str(cwd), cwd, None):
        return f"cannot start {command!r}: working directory {str(cwd)!r} does not exist or is not a directory"
    if isinstance(exc, PermissionError):
        return f"cannot start {command!r}: permission denied. Is the file executable (chmod +x)?"
    if exc.errno == errno.ENOENT:
        if os.sep in command:
            base = f"relative to the working directory {str(cwd or Path.cwd())!r}" if not os.path.isabs(command) else ""
            return f"cannot start {command!r}: no such file {base}".rstrip()
        return (
            f"cannot start {command!r}: command not found on the server's PATH "
            f"({env.get('PATH', '<unset>')}). Install it or give its full path."
        )
    return f"cannot start {command!r}: {exc.strerror or exc}"
