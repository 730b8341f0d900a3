"""Time and memory limits shared by the test scripts (tests/e2e, tests/golden, tests/fuzz).

No test may depend on wall-clock luck: a slow or loaded machine must not fail the suite. So

  - every time limit is a budget times time_factor(): TFMC_TEST_TIME_FACTOR (default 1; CI and
    scripts/test.sh leave it at 1, a very slow machine may set 4) times SANITIZER_FACTOR (3) when
    the tfmc under test is a sanitizer build;
  - a run that exceeds its limit is run again with RERUN_FACTOR (10) times the limit, and only a
    run that exceeds that too is a timeout (run_confirmed);
  - what a limit really guards is often memory: run(..., memory_mb=N) watches the child's
    resident set (/proc/PID/status every 20 ms, from a thread) and kills it above N MB, and reports its peak RSS
    (wait4's ru_maxrss), which works under AddressSanitizer, where RLIMIT_AS cannot be used
    (ASan reserves terabytes of address space) and RLIMIT_DATA breaks its shadow mappings.

Standard library only.
"""

import os
import signal
import subprocess
import threading
import time

SANITIZER_FACTOR = 3.0
RERUN_FACTOR = 10.0
POLL_SECONDS = 0.02


def env_factor():
    """TFMC_TEST_TIME_FACTOR, a positive number (default 1)."""
    try:
        f = float(os.environ.get("TFMC_TEST_TIME_FACTOR", "") or 1)
    except ValueError:
        f = 1.0
    return f if f > 0 else 1.0


_sanitized = {}


def is_sanitized(path):
    """Whether an executable was built with AddressSanitizer / UBSan / TSan."""
    path = os.path.abspath(path)
    if path not in _sanitized:
        try:
            with open(path, "rb") as f:
                data = f.read()
            _sanitized[path] = b"__asan_init" in data or b"__ubsan_handle" in data or b"__tsan_init" in data
        except OSError:
            _sanitized[path] = False
    return _sanitized[path]


def time_factor(tfmc=None, sanitized=None):
    """The factor every time budget of a test is multiplied by."""
    if sanitized is None:
        sanitized = bool(tfmc) and is_sanitized(tfmc)
    return env_factor() * (SANITIZER_FACTOR if sanitized else 1.0)


class Result:
    """What run() saw: rc (None on timeout, negative for a signal), stdout, stderr (bytes),
    seconds, peak_mb (peak resident set in MB, None when unknown), timed_out, over_memory (the
    child passed memory_mb and was killed), limit (the time limit it ran under)."""

    def __init__(self, rc, out, err, seconds, peak_mb, timed_out, over_memory, limit):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds
        self.peak_mb, self.timed_out, self.over_memory, self.limit = peak_mb, timed_out, over_memory, limit
        self.reruns = 0


class _Popen(subprocess.Popen):
    """Popen that reaps its child with wait4, keeping the child's resource usage."""
    rusage = None

    def _try_wait(self, wait_flags):
        try:
            pid, sts, ru = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return (self.pid, 0)
        if pid == self.pid:
            self.rusage = ru
        return (pid, sts)


def _rss_mb(pid):
    """(current, peak) resident set of a process in MB, or (None, None)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            cur = peak = None
            for line in f:
                if line.startswith(b"VmRSS:"):
                    cur = int(line.split()[1]) / 1024
                elif line.startswith(b"VmHWM:"):
                    peak = int(line.split()[1]) / 1024
            return cur, peak
    except (OSError, ValueError, IndexError):
        return None, None


def _kill(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        try:
            p.kill()
        except OSError:
            pass


def run(argv, stdin=None, timeout=None, env=None, memory_mb=None, preexec_fn=None, cwd=None):
    """Run argv (its own process group) with stdin bytes; a Result. timeout in seconds (None: no
    limit); memory_mb: a watcher thread kills the child when its resident set passes it."""
    t0 = time.monotonic()
    p = _Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
               env=env, preexec_fn=preexec_fn, cwd=cwd, start_new_session=True)
    seen = {"peak": 0.0, "over": False}
    stop = threading.Event()

    def watch():
        while not stop.wait(POLL_SECONDS):
            cur, hwm = _rss_mb(p.pid)
            if cur is None:
                return
            seen["peak"] = max(seen["peak"], cur, hwm or 0)
            if cur > memory_mb and p.returncode is None:
                seen["over"] = True
                _kill(p)
                return

    watcher = None
    if memory_mb:
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    timed_out = False
    try:
        out, err = p.communicate(stdin if stdin is not None else b"", timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(p)
        out, err = p.communicate()
    stop.set()
    if watcher:
        watcher.join()
    secs = time.monotonic() - t0
    peak, over = seen["peak"], seen["over"]
    if p.rusage is not None:
        peak = max(peak, p.rusage.ru_maxrss / 1024)
    if memory_mb and peak > memory_mb:
        over = True
    rc = None if timed_out and not over else p.returncode
    return Result(rc, out or b"", err or b"", secs, peak or None, timed_out and not over, over, timeout)


def run_confirmed(argv, stdin=None, timeout=None, **kw):
    """run(), and when the run exceeds its time limit, once more with RERUN_FACTOR times the
    limit: only a run that exceeds that as well comes back timed out (a slow machine is not a
    failure). The Result's reruns says whether a rerun happened, seconds what the first run took."""
    r = run(argv, stdin, timeout, **kw)
    if r.timed_out and timeout is not None:
        first = r.seconds
        r = run(argv, stdin, timeout * RERUN_FACTOR, **kw)
        r.reruns = 1
        r.first_seconds = first
    return r


_configured = {"factor": None}


def configure(tfmc):
    """Set the factor sprun scales by from the tfmc under test (a sanitizer build gets more)."""
    _configured["factor"] = time_factor(tfmc)
    return _configured["factor"]


def sprun(args, timeout=None, **kw):
    """subprocess.run with the suite's time policy: timeout is a budget, multiplied by the factor
    configure() set (else time_factor()); a run over it is run again with RERUN_FACTOR times as
    much, and only a run over that raises subprocess.TimeoutExpired (its timeout the larger
    limit). Everything else is subprocess.run's."""
    if timeout is None:
        return subprocess.run(args, **kw)
    factor = _configured["factor"] if _configured["factor"] is not None else time_factor()
    limit = timeout * factor
    try:
        return subprocess.run(args, timeout=limit, **kw)
    except subprocess.TimeoutExpired:
        pass
    return subprocess.run(args, timeout=limit * RERUN_FACTOR, **kw)


def scaled(seconds):
    """A budget in seconds as sprun applies it (for messages)."""
    factor = _configured["factor"] if _configured["factor"] is not None else time_factor()
    return seconds * factor * RERUN_FACTOR
