"""A stdio MCP server, standard library only, that misbehaves on request.

Switches (any combination):
  --exit-before-handshake CODE   write a message to stderr and exit with CODE before reading anything
  --hang-on-initialize           never answer initialize
  --ignore-eof-and-sigterm       keep running after stdin closes and ignore SIGTERM
  --grandchild                   spawn a grandchild that holds stdin/stdout/stderr open and sleeps
  --flood-stderr MB              write MB megabytes to stderr at start-up, before serving
  --garbage                      write a garbage line and a partial JSON line before each answer
  --unknown-id                   also answer every request a second time with an unknown id
  --slow SECONDS                 wait before each answer
  --close-stdout-after-init      close stdout after answering initialize, then keep running
  --encoding NAME                read and write JSON lines in that encoding
  --exit-after-init              exit (code 4) as soon as the client says initialized
  --times N --state-file PATH    with --exit-after-init: only the first N runs exit (counted in PATH)
  --paginate                     list tools one per page
  --start-delay SECONDS          sleep before serving (a slow start-up)
  --pidfile PATH                 write "pid grandchild_pid" there once running
  --extra-tool NAME              one more tool (repeatable), that answers with its own name
  --extra-tools-file PATH        more such tools, one name a line, read at start-up (so a restart can change them)
  --no-default-tools             only the extra tools (and, with --dynamic, the catalogue tools)
  --dynamic                      also the catalogue tools below, and listChanged in the capabilities
  --hang-on-list                 never answer tools/list (everything else works)
  --echo-meta                    also the tool meta(), that answers with the request's _meta as JSON

Tools: echo(text), add(a, b), sleep(seconds), big(size), crash(code), pid(), stderr(text), env(name), cwd(),
accent(), freeze() (stop answering anything, pings included, while staying alive); with --dynamic, for the catalogue:
add_tool(name) (adds a tool, then sends notifications/tools/list_changed), add_prompt(name) and
add_resource(uri) (the same for prompts and resources), burst(count) (sends count tools/list_changed
notifications), list_count() (how many tools/list requests this run has answered), progress() (two
notifications/progress for the request's progressToken, then the request's _meta as JSON).
A notifications/cancelled is logged to stderr as "cancelled <id>".
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

args = sys.argv[1:]


def flag(name: str) -> bool:
    return name in args


def option(name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


out_lock = threading.Lock()
stdout = sys.stdout.buffer
encoding = option("--encoding", "utf-8") or "utf-8"
slow = float(option("--slow", "0") or 0)

TOOLS = [
    {"name": n, "description": d, "inputSchema": {"type": "object", "properties": p}}
    for n, d, p in [
        ("echo", "Echo text back", {"text": {"type": "string"}}),
        ("add", "Add two numbers", {"a": {"type": "number"}, "b": {"type": "number"}}),
        ("sleep", "Sleep, then answer", {"seconds": {"type": "number"}}),
        ("big", "Return size characters", {"size": {"type": "integer"}}),
        ("crash", "Exit at once", {"code": {"type": "integer"}}),
        ("pid", "The server's pid", {}),
        ("stderr", "Write to stderr", {"text": {"type": "string"}}),
        ("env", "An environment variable", {"name": {"type": "string"}}),
        ("cwd", "The working directory", {}),
        ("freeze", "Stop answering anything", {}),
        ("accent", "The word cafe with an accent, made by the server", {}),
    ]
]


CATALOGUE_TOOLS = [
    {"name": n, "description": d, "inputSchema": {"type": "object", "properties": p}}
    for n, d, p in [
        ("add_tool", "Add a tool and announce it", {"name": {"type": "string"}}),
        ("add_prompt", "Add a prompt and announce it", {"name": {"type": "string"}}),
        ("add_resource", "Add a resource and announce it", {"uri": {"type": "string"}}),
        ("burst", "Send count tools/list_changed notifications", {"count": {"type": "integer"}}),
        ("list_count", "How many tools/list requests were answered", {}),
        ("progress", "Report two steps of progress, then answer with the request's _meta", {}),
    ]
]
PROMPTS: list = []
RESOURCES: list = []
EXTRA: set = set()
list_requests = 0


def extra_tool(name: str) -> dict:
    EXTRA.add(name)
    return {"name": name, "description": f"Answers {name}", "inputSchema": {"type": "object", "properties": {}}}


def set_up_tools() -> None:
    names = [args[i + 1] for i, a in enumerate(args) if a == "--extra-tool"]
    path = option("--extra-tools-file")
    if path and os.path.exists(path):
        with open(path) as f:
            names += [line.strip() for line in f if line.strip()]
    if flag("--no-default-tools"):
        TOOLS.clear()
    if flag("--dynamic"):
        TOOLS.extend(CATALOGUE_TOOLS)
    TOOLS.extend(extra_tool(name) for name in names)
    if flag("--echo-meta"):
        TOOLS.append({"name": "meta", "description": "The request's _meta", "inputSchema": {"type": "object"}})


def notify(method: str) -> None:
    send({"jsonrpc": "2.0", "method": method})


def send(message: dict) -> None:
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode(encoding)
    with out_lock:
        if flag("--garbage"):
            stdout.write(b'this is not json\n{"jsonrpc": "2.0", "id"\n')
        stdout.write(data)
        if flag("--unknown-id") and "id" in message:
            stdout.write((json.dumps({**message, "id": 987654321}) + "\n").encode())
        stdout.flush()


def text_result(text: str) -> dict:
    return {"content": [{"type": "text", "text": text}], "isError": False}


def call_tool(name: str, arguments: dict, meta: dict | None = None) -> dict:
    if name == "progress":
        token = (meta or {}).get("progressToken")
        for step in (1, 2):
            if token is not None:
                params = {"progressToken": token, "progress": step, "total": 2, "message": f"step {step}"}
                send({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})
        return text_result(json.dumps(meta or {}, sort_keys=True))
    if name in EXTRA:
        return text_result(name)
    if name == "meta" and flag("--echo-meta"):
        return text_result(json.dumps(meta or {}, sort_keys=True))
    if name == "add_tool":
        TOOLS.append(extra_tool(str(arguments["name"])))
        notify("notifications/tools/list_changed")
        return text_result("added")
    if name == "add_prompt":
        PROMPTS.append({"name": str(arguments["name"]), "description": "An added prompt"})
        notify("notifications/prompts/list_changed")
        return text_result("added")
    if name == "add_resource":
        RESOURCES.append({"uri": str(arguments["uri"]), "name": str(arguments["uri"]), "mimeType": "text/plain"})
        notify("notifications/resources/list_changed")
        return text_result("added")
    if name == "burst":
        for _ in range(int(arguments.get("count", 100))):
            notify("notifications/tools/list_changed")
        return text_result("sent")
    if name == "list_count":
        return text_result(str(list_requests))
    if name == "echo":
        return text_result(str(arguments.get("text", "")))
    if name == "add":
        return text_result(str(arguments["a"] + arguments["b"]))
    if name == "sleep":
        time.sleep(float(arguments.get("seconds", 1)))
        return text_result("slept")
    if name == "big":
        return text_result("x" * int(arguments.get("size", 1024)))
    if name == "crash":
        sys.stderr.write("crashing on purpose\n")
        sys.stderr.flush()
        os._exit(int(arguments.get("code", 3)))
    if name == "pid":
        return text_result(str(os.getpid()))
    if name == "env":
        return text_result(os.environ.get(str(arguments["name"]), "<unset>"))
    if name == "freeze":
        frozen.set()
        return text_result("frozen")
    if name == "accent":
        return text_result("caf\u00e9")
    if name == "cwd":
        return text_result(os.getcwd())
    if name == "stderr":
        sys.stderr.write(str(arguments.get("text", "")) + "\n")
        sys.stderr.flush()
        return text_result("ok")
    raise KeyError(name)


frozen = threading.Event()


def exits_this_run() -> bool:
    times, state_file = option("--times"), option("--state-file")
    if times is None or state_file is None:
        return True
    runs = 0
    if os.path.exists(state_file):
        with open(state_file) as f:
            runs = int(f.read())
    with open(state_file, "w") as f:
        f.write(str(runs + 1))
    return runs < int(times)


def handle(message: dict) -> None:
    global list_requests
    method = message.get("method")
    if frozen.is_set():
        return
    if method == "tools/list":
        list_requests += 1
        if flag("--hang-on-list"):
            return
    if method == "notifications/cancelled":
        sys.stderr.write(f"cancelled {(message.get('params') or {}).get('requestId')}\n")
        sys.stderr.flush()
    if method == "notifications/initialized" and flag("--exit-after-init") and EXITS:
        sys.stderr.write("exiting after init (on purpose)\n")
        sys.stderr.flush()
        os._exit(4)
    if "id" not in message:
        return  # notifications
    if slow:
        time.sleep(slow)
    request_id = message["id"]
    params = message.get("params") or {}
    try:
        if method == "initialize":
            if flag("--hang-on-initialize"):
                return
            result = {
                "protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}, "resources": {}, "prompts": {}}
                if not flag("--dynamic")
                else {kind: {"listChanged": True} for kind in ("tools", "resources", "prompts")},
                "serverInfo": {"name": "misbehaving", "version": "1.0"},
            }
            send({"jsonrpc": "2.0", "id": request_id, "result": result})
            if flag("--close-stdout-after-init"):
                os.close(1)
            return
        if method == "ping":
            result = {}
        elif method == "tools/list" and flag("--paginate"):
            index = int(params.get("cursor") or 0)
            result = {"tools": TOOLS[index : index + 1]}
            if index + 1 < len(TOOLS):
                result["nextCursor"] = str(index + 1)
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            result = call_tool(params["name"], params.get("arguments") or {}, params.get("_meta"))
        elif method == "resources/list":
            result = {"resources": RESOURCES}
        elif method == "resources/read":
            result = {"contents": [{"uri": params["uri"], "mimeType": "text/plain", "text": f"read {params['uri']}"}]}
        elif method == "prompts/list":
            result = {"prompts": PROMPTS}
        elif method == "prompts/get":
            text = f"prompt {params['name']} {json.dumps(params.get('arguments') or {})}"
            result = {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]}
        else:
            send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": f"no {method}"}})
            return
        send({"jsonrpc": "2.0", "id": request_id, "result": result})
    except Exception as exc:
        send({"jsonrpc": "2.0", "id": request_id, "error": {"code": -32603, "message": repr(exc)}})
    except OSError:
        pass


EXITS = True


def main() -> None:
    global EXITS
    if flag("--exit-after-init"):
        EXITS = exits_this_run()
    code = option("--exit-before-handshake")
    if code is not None:
        sys.stderr.write("misbehaving: fatal: cannot open the database (on purpose)\n")
        sys.stderr.flush()
        sys.exit(int(code))
    time.sleep(float(option("--start-delay", "0") or 0))
    set_up_tools()
    grandchild_pid = 0
    if flag("--grandchild"):
        grandchild_pid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]).pid
    if flag("--ignore-eof-and-sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pidfile = option("--pidfile")
    if pidfile:
        with open(pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()} {grandchild_pid}")
        os.replace(pidfile + ".tmp", pidfile)
    flood = option("--flood-stderr")
    if flood:
        line = b"e" * 1023 + b"\n"
        for _ in range(int(float(flood) * 1024)):
            sys.stderr.buffer.write(line)
        sys.stderr.buffer.write(b"flood done\n")
        sys.stderr.flush()
    for raw in sys.stdin.buffer:
        try:
            message = json.loads(raw.decode(encoding))
        except ValueError:
            continue
        if message.get("method") == "tools/call" or slow:
            threading.Thread(target=handle, args=(message,), daemon=True).start()
        else:
            handle(message)
    if flag("--ignore-eof-and-sigterm"):
        while True:
            time.sleep(1)


if __name__ == "__main__":
    main()
