"""Waiting for the other workers of a TF_CONFIG cluster, in Python, before TensorFlow's own wait.

TensorFlow's MultiWorkerMirroredStrategy waits for every worker inside one C++ call that holds the interpreter: while
a peer is missing it prints nothing, and SIGTERM and SIGINT are never acted on (its coordination service catches
SIGTERM). So the workers first meet here: each listens on its own cluster address (where its TensorFlow server will
listen) and connects to its peers' addresses until every one answers, saying every `report_every_s` seconds whom it
waits for; SIGTERM and SIGINT end the wait at once with a clear line (`PeerWaitStopped`), and a wait longer than the
limit (`SAEH_PEER_WAIT_LIMIT` seconds) is a `SaehError` naming the missing peers. Only then does TensorFlow start,
with every peer up, and its own wait is short.
"""

import contextlib
import os
import signal
import socket
import threading
import time

from saeh.errors import SaehError

WAIT_LIMIT_VARIABLE = "SAEH_PEER_WAIT_LIMIT"
DEFAULT_WAIT_LIMIT_S = 600.0
REPORT_EVERY_S = 30.0
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WORKER_TASK_TYPES = ("chief", "worker")  # the tasks that train; a parameter server or an evaluator does not


class PeerWaitStopped(SaehError):
    """A signal ended the wait for the peers; `exit_status` is the shell's for that signal (128 + its number)."""

    def __init__(self, message, signal_number):
        super().__init__(message)
        self.exit_status = 128 + signal_number


def wait_limit(environ=None):
    """Seconds a worker waits for its peers: `SAEH_PEER_WAIT_LIMIT`, else 600."""
    text = (os.environ if environ is None else environ).get(WAIT_LIMIT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_WAIT_LIMIT_S
    try:
        limit = float(text)
    except ValueError:
        limit = -1.0
    if not limit > 0:
        raise SaehError(f"{WAIT_LIMIT_VARIABLE} must be a positive number of seconds; got {text!r}")
    return limit


def peers_of(cluster, task_type, task_index):
    """[(name, address)] of the training tasks of `cluster` other than this one, e.g. [('worker 1', 'host2:12345')]."""
    return [(f"{kind} {index}", address) for kind in WORKER_TASK_TYPES
            for index, address in enumerate(cluster.get(kind, [])) if (kind, index) != (task_type, task_index)]


def port_of(address):
    """The port of 'host:port' (or '[ipv6]:port')."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise SaehError(f"TF_CONFIG address {address!r} is not host:port")
    return int(port)


def answers(address, timeout_s=0.5):
    """Whether something listens at 'host:port' (a waiting peer, or its TensorFlow server)."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        with socket.create_connection((host, port_of(address)), timeout=timeout_s):
            return True
    except OSError:
        return False


def listen_on(own_address):
    """A listening socket on this worker's port (all interfaces, as TensorFlow's server binds), for peers to find."""
    port = port_of(own_address)
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        return socket.create_server(("", port))
    except OSError as error:
        raise SaehError(f"cannot listen on this worker's TF_CONFIG address {own_address}: {error.strerror or error} "
                        "(another process holds the port?)") from error


def describe_peers(missing):
    """'worker 1 at host2:12345, ...' for [(name, address)]."""
    return ", ".join(f"{name} at {address}" for name, address in missing)


def print_now(text):
    """print, flushed: the waiting lines must reach a log file or pipe while the worker waits."""
    print(text, flush=True)


def wait_for_peers(cluster, task_type, task_index, limit_s=None, report_every_s=REPORT_EVERY_S, poll_s=1.0,
                   log=print_now):
    """Return once every peer of task (`task_type`, `task_index`) in `cluster` ({type: [addresses]}) answers at its
    address, logging whom it waits for at once and every `report_every_s` seconds; raise `PeerWaitStopped` on SIGTERM
    or SIGINT (from the main thread; elsewhere signals keep their handlers) and `SaehError` after `limit_s` seconds
    (default: `wait_limit()`), naming the peers still missing."""
    limit_s = wait_limit() if limit_s is None else limit_s
    peers = peers_of(cluster, task_type, task_index)
    if not peers:
        return
    me = f"{task_type} {task_index}"
    started = time.monotonic()
    next_report = started
    received = []

    def stop(signal_number, frame):
        received.append(signal_number)

    with listen_on(cluster[task_type][task_index]) as listener, signals_handled(STOPPING_SIGNALS, stop):
        listener.setblocking(False)
        missing = peers
        while True:
            accept_waiting(listener)
            missing = [(name, address) for name, address in missing if not answers(address)]
            waited = time.monotonic() - started
            if received:
                name = signal.Signals(received[0]).name
                raise PeerWaitStopped(f"{me} stopped by {name} after {waited:.0f} s waiting for "
                                      f"{describe_peers(missing) or 'its peers'}; nothing was trained or written",
                                      received[0])
            if not missing:
                if waited >= report_every_s:
                    log(f"{me}: every peer answered after {waited:.0f} s; starting TensorFlow's collective setup")
                return
            if waited >= limit_s:
                raise SaehError(f"{me} waited {waited:.0f} s (the limit: ${WAIT_LIMIT_VARIABLE} seconds, default "
                                f"{DEFAULT_WAIT_LIMIT_S:.0f}) for {describe_peers(missing)}, which never answered: start "
                                "the same command there with its TF_CONFIG, or check the address")
            if time.monotonic() >= next_report:
                log(f"{me}: waiting for {describe_peers(missing)} ({waited:.0f} s so far, limit {limit_s:.0f} s; "
                    "SIGTERM or Ctrl-C stops)")
                next_report += report_every_s
            time.sleep(poll_s)  # a signal's handler runs here, and the loop sees it at once


def accept_waiting(listener):
    """Accept and close the peers' probes, so the listener's backlog never fills during a long wait."""
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        connection.close()


@contextlib.contextmanager
def signals_handled(signals, handler):
    """Within the block, `handler` handles `signals`, in the main thread (the only one Python lets set them; elsewhere
    they keep their handlers); the previous handlers come back after it."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {number: signal.signal(number, handler) for number in signals}
    try:
        yield
    finally:
        for number, old_handler in previous.items():
            signal.signal(number, old_handler)
