"""The scripts the sandbox's interpreters run (``python -I -c SCRIPT``).

* :data:`CANDIDATE` runs inside the sandbox. In ``program`` mode it runs the whole
  program (the paper's protocol: code and tests in one process) and prints a marker
  after it returned. In ``serve`` mode it runs the program's definitions, then answers
  the judge's requests (call this function with these arguments, give me this value),
  sending back only :mod:`daedal.eval._wire` data.
* :data:`JUDGE` is trusted: it runs the benchmark's tests with every name they take
  from the program bound to a stand-in that asks the candidate's process, and writes
  the verdict on a descriptor the candidate's process never holds.

Both embed the source of :mod:`daedal.eval._wire`, since neither can import daedal.
They are compiled once in the evaluator and reach the interpreters as marshalled code
on a sealed memfd (:data:`BOOT` loads it), which saves compiling them for every program.
"""

from __future__ import annotations

from pathlib import Path

#: The ``-c`` script of both interpreters: run the marshalled code on descriptor argv[1].
BOOT = "import marshal, os, sys; exec(marshal.loads(os.pread(int(sys.argv[1]), 1 << 24, 0)))"

_WIRE = (Path(__file__).with_name("_wire.py")).read_text(encoding="utf-8")

# The Python guard: a second layer behind the operating system. "process" refuses
# creating processes (a fork bomb fails at once, as root too, where RLIMIT_NPROC does
# not hold); "full" (the unsafe fallback, with no isolation by the OS) also refuses
# writes outside the working directory, signals to other processes, sockets and ctypes.
_GUARD = r"""
def _install_guard(level, root):
    import os, sys
    realpath, join, getpid, fspath, getcwd = os.path.realpath, os.path.join, os.getpid, os.fspath, os.getcwd
    sep = os.sep
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    refused = {
        "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
        "subprocess.Popen", "pty.spawn", "sys.remote_exec",
    }
    full = level == "full"
    if full:
        refused |= {
            "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "socket.connect", "socket.connect_ex",
            "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
            "socket.gethostbyaddr", "os.chroot", "resource.setrlimit", "resource.prlimit", "os.setuid",
            "os.setgid", "sqlite3.connect", "sqlite3.connect/handle",
        }
    mutating = {
        "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
        "os.truncate", "os.utime", "shutil.rmtree", "os.setxattr", "os.removexattr",
        "os.mkfifo", "os.mknod", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
        "shutil.move", "os.lchflags", "os.chflags", "os.symlink",
    }

    with_dir_fd = {"os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.chmod", "os.chown", "os.utime",
                   "os.mkfifo", "os.mknod"}

    def inside(path):
        if path is None:
            return True
        if isinstance(path, int):
            return False  # a descriptor could be anything: refused
        try:
            path = fspath(path)
        except TypeError:
            return True
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        full_path = realpath(join(getcwd(), path))
        return full_path == root or full_path.startswith(root + sep) or full_path == os.devnull

    def hook(event, args):
        if event in refused:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if not full:
            return
        if event in ("os.kill", "os.killpg"):
            if event == "os.kill" and args[0] == getpid():
                return
            raise PermissionError(f"sandbox: {event}{args!r} is not allowed")
        if event == "import" and args[0] in ("_posixsubprocess", "_ctypes"):
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or bool(flags & write_flags)
            if writes and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the sandbox directory is not allowed")
        elif event in mutating:
            if event == "os.chmod" and isinstance(args[0], int):
                raise PermissionError("sandbox: changing modes through a descriptor is not allowed")
            # The trailing arguments of these events are their dir_fd (-1 when unused).
            trailing = args[-2:] if event in ("os.rename", "os.link") else args[-1:] if event in with_dir_fd else ()
            if any(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in trailing):
                raise PermissionError(f"sandbox: {event} relative to a directory descriptor is not allowed")
            for p in [a for a in args if isinstance(a, (str, bytes, os.PathLike))]:
                if not inside(p):
                    raise PermissionError(f"sandbox: {event} on {p!r} outside the sandbox directory is not allowed")

    sys.addaudithook(hook)
"""

# The rlimits each runner sets on itself before anything else ("as,cpu,fsize,nproc" in
# bytes and seconds; nproc -1: not set, as for root, to whom the kernel does not apply it).
_LIMITS = r"""
def _set_limits(spec):
    import resource
    memory, cpu, fsize, nproc = (int(v) for v in spec.split(","))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc >= 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
"""

CANDIDATE = (
    _WIRE
    + _LIMITS
    + _GUARD
    + r"""
def _candidate_main():
    import os, sys
    os.close(int(sys.argv[1]))  # this script's own code (see BOOT)
    _set_limits(sys.argv[2])
    mode, guard, program_path, extra_path = sys.argv[3:7]
    fds = [int(a) for a in sys.argv[7:]]
    exit_, write, read = os._exit, os.write, os.read
    if extra_path:
        sys.path.extend(p for p in extra_path.split(os.pathsep) if p)
    with open(program_path, encoding="utf-8") as f:
        source = f.read()
    nonce = b""
    if mode == "program":
        nonce = read(fds[0], 64)
        os.close(fds[0])
    if guard != "off":
        _install_guard(guard, os.path.realpath(os.getcwd()))
    namespace = {"__name__": "__main__", "__file__": program_path, "__builtins__": __builtins__}
    if mode == "program":
        try:
            exec(compile(source, "program.py", "exec"), namespace)
        except BaseException:
            # SystemExit too: a program that exits before its end did not show that its tests pass.
            import traceback
            traceback.print_exc()
            exit_(1)
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        write(1, b"\n" + nonce + b"\n")
        exit_(0)

    requests, replies = fds
    incoming = os.fdopen(requests, "rb")

    def send(message):
        data = wire_dumps(message).encode()
        while data:
            data = data[write(replies, data):]

    def failure(error):
        return {"error": type(error).__name__[:80], "message": str(error)[:400]}

    try:
        exec(compile(source, "program.py", "exec"), namespace)
    except BaseException as error:
        import traceback
        traceback.print_exc()
        send({"ready": False, **failure(error)})
        exit_(1)
    kinds = {}
    for name, value in list(namespace.items()):
        if isinstance(name, str) and not name.startswith("__"):
            kinds[name] = "callable" if callable(value) else "value"
    send({"ready": True, "names": kinds})
    refs = []

    def local(data):
        return refs[data["v"]]

    while True:
        line = incoming.readline()
        if not line:
            exit_(0)
        try:
            message = wire_loads(line)
            op = message.get("op")
            if op == "get":
                reply = {"ok": wire_encode(namespace[message["name"]], refs)}
            elif op == "call":
                target = namespace[message["name"]] if "name" in message else refs[message["ref"]]
                args = wire_decode(message["args"], local)
                kwargs = wire_decode(message["kwargs"], local)
                reply = {"ok": wire_encode(target(*args, **kwargs), refs)}
            else:
                exit_(0)
        except BaseException as error:
            reply = failure(error)
        try:
            send(reply)
        except BaseException as error:
            send(failure(error))
        try:
            sys.stdout.flush()
        except BaseException:
            pass

_candidate_main()
"""
)

JUDGE = (
    _WIRE
    + _LIMITS
    + r'''
class CandidateGone(BaseException):
    """The candidate's process ended or broke the protocol (not catchable as Exception)."""


class CandidateError(Exception):
    """An exception the candidate raised whose type is not a built-in one."""


def _judge_main():
    import builtins, os, sys
    os.close(int(sys.argv[1]))  # this script's own code (see BOOT)
    _set_limits(sys.argv[2])
    requests, replies, verdict_fd, limit = (int(a) for a in sys.argv[3:7])
    sys.path.extend(p for p in sys.argv[7].split(os.pathsep) if p)
    tests = sys.stdin.read()
    outgoing = os.fdopen(requests, "wb", buffering=0)
    incoming = os.fdopen(replies, "rb")
    gone = []

    def verdict(status, detail):
        os.write(verdict_fd, wire_dumps({"status": status, "detail": detail[:1000]}).encode())
        os._exit(0)

    def receive():
        if gone:
            raise CandidateGone(gone[0])
        line = incoming.readline(limit)
        if not line.endswith(b"\n"):
            gone.append("the program's process ended" if not line else "the program sent too much")
            raise CandidateGone(gone[0])
        try:
            return wire_loads(line)
        except ValueError:
            gone.append("the program's process sent something that is not a reply")
            raise CandidateGone(gone[0]) from None

    def request(message):
        try:
            outgoing.write(wire_dumps(message).encode())
        except OSError:
            gone.append("the program's process ended")
            raise CandidateGone(gone[0]) from None
        reply = receive()
        if "ok" in reply:
            try:
                return wire_decode(reply["ok"], make_ref)
            except (ValueError, TypeError, RecursionError, OverflowError):
                gone.append("the program's process sent something that is not data")
                raise CandidateGone(gone[0]) from None
        name, text = str(reply.get("error", "")), str(reply.get("message", ""))
        kind = getattr(builtins, name, None)
        if isinstance(kind, type) and issubclass(kind, Exception) and kind.__module__ == "builtins":
            try:
                error = kind(text)
            except Exception:
                error = CandidateError(f"{name}: {text}")
        else:
            error = CandidateError(f"{name}: {text}")
        raise error

    def call_ref(ref, args, kwargs):
        return request({"op": "call", "ref": ref.id, "args": wire_encode(list(args)), "kwargs": wire_encode(dict(kwargs))})

    def make_ref(data):
        return Ref(data["v"], str(data.get("kind", "object"))[:60], call_ref if data.get("callable") is True else None)

    def remote(name):
        def call(*args, **kwargs):
            return request({"op": "call", "name": name, "args": wire_encode(list(args)), "kwargs": wire_encode(dict(kwargs))})
        call.__name__ = call.__qualname__ = name
        return call

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        code = compile(tests, "tests.py", "exec")
    except (SyntaxError, ValueError) as error:
        verdict("error", f"the tests do not parse: {error}")
    # The global names the tests (and the functions they define) use.
    used, todo = set(), [code]
    while todo:
        c = todo.pop()
        used.update(c.co_names)
        todo.extend(k for k in c.co_consts if isinstance(k, type(code)))
    try:
        hello = receive()
    except CandidateGone as why:
        verdict("failed", f"the program did not start: {why}")
    if hello.get("ready") is not True:
        verdict("failed", f"the program raised before the tests: {str(hello.get('error'))[:80]}: {str(hello.get('message'))[:300]}")
    offered = hello.get("names")
    if not isinstance(offered, dict):
        verdict("failed", "the program's process broke the protocol")
    try:
        for name in sorted(used - set(dir(builtins))):
            kind = offered.get(name)
            if kind == "callable":
                namespace[name] = remote(name)
            elif kind == "value":
                namespace[name] = request({"op": "get", "name": name})
        exec(code, namespace)
    except CandidateGone as why:
        verdict("failed", str(why))
    except BaseException as error:
        import traceback
        frames = traceback.extract_tb(error.__traceback__)
        where = next((f"tests.py line {f.lineno}: " for f in reversed(frames) if f.filename == "tests.py"), "")
        text = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()
        verdict("failed", where + (text[-1] if text else type(error).__name__))
    verdict("passed", "")

_judge_main()
'''
)
