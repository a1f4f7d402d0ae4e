#!/usr/bin/env python3
"""An agentd agent in plain Python: no SDK, just the NDJSON protocol on stdin/stdout."""
import json
import sys


def send(message):
    # stdout carries protocol lines only: one JSON object per line, flushed at once.
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def receive():
    line = sys.stdin.readline()
    if not line:  # stdin closed: the daemon is gone, and an orphan must not keep running
        sys.exit(0)
    return json.loads(line)


def call_model(request_id, messages):
    send({"type": "model", "id": request_id, "request": {"messages": messages, "max_tokens": 200}})
    while True:
        message = receive()
        if message["type"] == "stop":  # a budget ran out or the daemon shuts down: last words, then exit
            send({"type": "handoff", "summary": "stopped: " + message["reason"], "next_steps": ["ask the model again"]})
            sys.exit(0)
        if message.get("id") != request_id:
            continue  # a budget_warning, or anything else not meant for this call
        if message["type"] == "error":
            if message["code"] in ("budget_exhausted", "stopping"):
                continue  # refused because the run is ending: a stop follows, and is answered above
            raise RuntimeError(message["code"] + ": " + message["message"])
        return message["response"]["content"]


def main():
    start = receive()
    task = start["task"]
    print("starting task", task["id"], file=sys.stderr)  # stderr goes to the daemon's log
    send({"type": "log", "level": "info", "msg": "working on: " + task["goal"]})
    answer = call_model("m1", [{"role": "user", "content": task["goal"]}])
    send({"type": "checkpoint", "state": {"step": "answered"}})
    send({"type": "result", "output": {"answer": answer}})


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # a failed run: the daemon retries it, then dead-letters it
        print("agent failed:", error, file=sys.stderr)
        sys.exit(1)
