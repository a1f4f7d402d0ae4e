"""agentd for Python agents: the protocol of docs/protocol.md wrapped so an agent is one function.

Standard library only. The daemon puts this file's folder on every process
agent's PYTHONPATH, so an agent just does::

    import agentd

    def work(ctx):
        reply = ctx.model({"messages": [{"role": "user", "content": ctx.task["goal"]}]})
        ctx.checkpoint({"answered": True})
        return {"answer": reply["content"]}

    agentd.run_agent(work)

stdout belongs to the protocol: run_agent points sys.stdout at stderr (which
the daemon logs), so a stray print cannot corrupt it. When a budget runs out
or the daemon shuts down, agentd sends ``stop``: the module answers it with a
handoff (the on_stop handler's, or a default naming the reason and the last
checkpointed state) and exits 0, whatever the agent was doing. A call refused
with ``budget_exhausted`` or ``stopping`` raises AgentdError; left uncaught, it
ends in that same handoff, never in a traceback.
"""
import json
import os
import queue
import sys
import threading

__all__ = ["AgentdError", "Context", "run_agent"]

# A stop handler may take this share of grace_ms before the default handoff goes instead.
_HANDLER_GRACE_SHARE = 0.5


class AgentdError(Exception):
    """A call the daemon refused or that failed. Match on ``code``, never on the message."""

    def __init__(self, code, message):
        super().__init__(code + ": " + message)
        self.code = code
        self.message = message


class _Protocol:
    """stdin read by a thread (so a stop is seen while the agent computes), stdout written under a lock."""

    def __init__(self, stdin, stdout):
        self._stdin = stdin
        self._stdout = stdout
        self._write_lock = threading.Lock()
        self._pending = {}  # id -> queue.Queue of one reply
        self._pending_lock = threading.Lock()
        self._next_id = 0
        self.start = None
        self._started = threading.Event()
        self.stop_reason = None
        self.on_stop = None
        self.last_state = None
        self.finished = False

    def send(self, message):
        with self._write_lock:
            self._stdout.write(json.dumps(message) + "\n")
            self._stdout.flush()

    def request(self, kind, body):
        if self.stop_reason is not None:
            raise AgentdError("stopping", "the run is stopping: " + self.stop_reason)
        with self._pending_lock:
            self._next_id += 1
            request_id = "py" + str(self._next_id)
            reply = queue.Queue(maxsize=1)
            self._pending[request_id] = reply
        self.send(dict(body, type=kind, id=request_id))
        message = reply.get()
        if message["type"] == "error":
            raise AgentdError(message.get("code", "error"), message.get("message", ""))
        return message

    def read_forever(self):
        for line in self._stdin:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            kind = message.get("type")
            if kind == "start":
                self.start = message
                self._started.set()
            elif kind == "stop":
                self._on_stop(message)
            elif "id" in message:
                with self._pending_lock:
                    waiter = self._pending.pop(message["id"], None)
                if waiter is not None:
                    waiter.put(message)
        # stdin ended: the daemon is done with us or gone. An orphan must not keep running.
        self._started.set()
        os._exit(0)

    def wait_start(self):
        self._started.wait()
        return self.start

    def _on_stop(self, stop):
        if self.stop_reason is not None or self.finished:
            return
        self.stop_reason = stop.get("reason", "stop")
        with self._pending_lock:
            waiting = list(self._pending.values())
            self._pending.clear()
        for waiter in waiting:
            waiter.put({"type": "error", "code": "stopping", "message": "the run is stopping: " + self.stop_reason})
        handoff = self._handoff(stop)
        self.send({"type": "handoff", "summary": handoff.get("summary"), "next_steps": handoff.get("next_steps", []), "state": handoff.get("state", self.last_state)})
        sys.stderr.flush()
        os._exit(0)

    def _handoff(self, stop):
        fallback = {"summary": "stopped: " + self.stop_reason + " before the task was done", "next_steps": ["continue from the last checkpoint"]}
        if self.on_stop is None:
            return fallback
        box = {}

        def call():
            try:
                box["value"] = self.on_stop(self.stop_reason)
            except Exception as error:  # a failing handler still gets the default handoff out
                sys.stderr.write("agentd: the stop handler failed: %r\n" % (error,))

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        worker.join(max(0.0, stop.get("grace_ms", 0) * _HANDLER_GRACE_SHARE / 1000.0))
        given = box.get("value")
        if not isinstance(given, dict) or not given.get("summary"):
            return fallback
        return given


class Context:
    """What the agent function gets: the task, what it resumes from, and the calls."""

    def __init__(self, protocol, start):
        self._protocol = protocol
        self.run_id = start["run_id"]
        self.task = start["task"]
        self.context = start.get("context")
        resume = start.get("resume") or {}
        self.checkpoint_state = resume.get("checkpoint")
        self.handoff = resume.get("handoff")
        self.resolutions = resume.get("resolutions", [])
        self.budget = start.get("budget", {}).get("remaining", {})

    def model(self, request):
        """One model call (a step). Returns {"content", "tool_calls", "usage", "model", "replayed"}."""
        reply = self._protocol.request("model", {"request": request})
        response = reply.get("response", {})
        return {"content": response.get("content"), "tool_calls": response.get("tool_calls", []), "usage": reply.get("usage"), "model": reply.get("model"), "replayed": reply.get("replayed", False)}

    def tool(self, name, args):
        """One tool call; returns its result."""
        return self._protocol.request("tool", {"name": name, "args": args}).get("result")

    def checkpoint(self, state, context=None):
        """Save state (and optionally context); a resume starts from it. It is also the default handoff's state."""
        self._protocol.last_state = state
        message = {"type": "checkpoint", "state": state}
        if context is not None:
            message["context"] = context
        self._protocol.send(message)

    def uncertain(self, reason, question, blockers=None, state=None):
        """Escalate to a person and end the run: return what this returns from the agent function."""
        self._protocol.send({"type": "uncertain", "reason": reason, "question": question, "blockers": blockers or [], "state": state if state is not None else self._protocol.last_state})
        return _ESCALATED

    def log(self, msg, level="info"):
        self._protocol.send({"type": "log", "level": level, "msg": msg})

    def on_stop(self, handler):
        """handler(reason) -> {"summary", "next_steps", "state"}: the handoff sent when stop arrives."""
        self._protocol.on_stop = handler

    @property
    def stopping(self):
        """The stop reason once stop has arrived, else None."""
        return self._protocol.stop_reason


_ESCALATED = object()


def run_agent(work, stdin=None, stdout=None):
    """Run work(ctx) as this process's agent, then exit: 0 after a result, an escalation or a handoff."""
    protocol = _Protocol(stdin or sys.stdin, stdout or sys.stdout)
    sys.stdout = sys.stderr  # print() must never write to the protocol's stdout
    threading.Thread(target=protocol.read_forever, daemon=True).start()
    start = protocol.wait_start()
    if start is None:
        sys.exit(0)
    try:
        output = work(Context(protocol, start))
    except AgentdError as error:
        if error.code in ("budget_exhausted", "stopping"):
            _wait_for_stop()  # the daemon sends stop next; the reader thread hands off and exits
        _fail(error)
    except Exception as error:
        if protocol.stop_reason is not None:
            _wait_for_stop()
        _fail(error)
    if protocol.stop_reason is not None:
        _wait_for_stop()
    protocol.finished = True
    if output is not _ESCALATED:
        protocol.send({"type": "result", "output": output})
    sys.stderr.flush()
    os._exit(0)


def _wait_for_stop():
    threading.Event().wait()


def _fail(error):
    # A failed run: the daemon retries it, then dead-letters it with these stderr lines.
    sys.stderr.write("agent failed: %s: %s\n" % (type(error).__name__, error))
    sys.stderr.flush()
    os._exit(1)
