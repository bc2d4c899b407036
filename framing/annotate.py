"""``framing annotate QUEUE -o annotations.jsonl``: label a review queue on a local web page.

The page (served by the standard library's ``http.server`` on 127.0.0.1; nothing else is needed
for one annotator on one machine) shows one sentence at a time with its neighbouring sentences,
the model's label and probabilities. Keys ``1``–``4`` choose a label, ``u`` undoes the last
decision, ``s`` skips.

Nothing is lost if the browser or the server dies: every decision is appended to the output and
flushed to disk (``fsync``) before the page moves on, and skips go the same way to
``<output>.skipped``. Undo rewrites the file without its last decision atomically (a temporary
file renamed over it). Reopening the same queue and output continues with the first sentence that
has neither a decision nor a skip.

The output is in the corpus schema (:mod:`framing.data`): ``origin: "annotated"``, ``hard: true``
(the review queue picks hard cases), plus ``annotator``, ``annotated_at`` (UTC, ISO 8601) and
``model_label``, so it can be added to ``seeds/corpus/`` as it is.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from framing.labels import LABELS, REGISTERS
from framing.review import item_key, read_queue

DEFAULT_PORT = 8765


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _atomic_rewrite(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - not every filesystem lets a folder be opened
        pass


def _read_lines(path: Path, what: str) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: malformed {what} line ({e.msg}); fix or remove it, then reopen") from e
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise ValueError(f"{path}:{n}: a {what} line needs a string 'id'")
        out.append(obj)
    return out


class AnnotationStore:
    """Decisions on a queue, kept on disk as they are made (see the module docstring).

    Args:
        queue: Queue items (:func:`framing.review.read_queue`).
        output: The annotations file (corpus schema; appended to).
        annotator: Written into every record.
        domain: Domain for items whose queue entry has none.
        register: Register for items whose queue entry has none (one of :data:`REGISTERS`).
    """

    def __init__(self, queue: list[dict], output: str | Path, annotator: str, domain: str = "annotated",
                 register: str = "wire"):
        if register not in REGISTERS:
            raise ValueError(f"register must be one of {list(REGISTERS)}, got {register!r}")
        if not annotator or not annotator.strip():
            raise ValueError("annotator must be a non-empty name")
        self.queue = queue
        self.by_key = {item_key(it): it for it in queue}
        self.output = Path(output)
        self.skipped_path = self.output.with_name(self.output.name + ".skipped")
        self.annotator, self.domain, self.register = annotator.strip(), domain, register
        self.lock = threading.Lock()
        self.output.parent.mkdir(parents=True, exist_ok=True)
        decided = _read_lines(self.output, "annotation")
        skipped = _read_lines(self.skipped_path, "skip")
        self.decisions = {d["id"]: d for d in decided}
        self.skips = {s["id"]: s for s in skipped}
        # Undo order: the files' own order, merged by time (both are written as actions happen).
        events = [("decide", d["id"], d.get("annotated_at", "")) for d in decided] + \
                 [("skip", s["id"], s.get("skipped_at", "")) for s in skipped]
        self.history = [(kind, key) for kind, key, _ in sorted(events, key=lambda e: e[2])]

    # -- state ---------------------------------------------------------------------------------
    def next_item(self) -> dict | None:
        for key, item in self.by_key.items():
            if key not in self.decisions and key not in self.skips:
                return {"key": key, **{k: item.get(k) for k in ("text", "label", "probs", "model", "context_before",
                                                              "context_after", "reason", "doc_id", "second_label")}}
        return None

    def state(self) -> dict:
        with self.lock:
            done = sum(1 for k in self.by_key if k in self.decisions)
            skipped = sum(1 for k in self.by_key if k in self.skips)
            last = self.history[-1] if self.history else None
            return {"item": self.next_item(), "labels": list(LABELS), "total": len(self.by_key), "done": done,
                    "skipped": skipped, "can_undo": bool(self.history),
                    "last": {"action": last[0], "key": last[1]} if last else None}

    # -- actions -------------------------------------------------------------------------------
    def _item(self, key: str) -> dict:
        if key not in self.by_key:
            raise KeyError(f"{key!r} is not in the queue")
        return self.by_key[key]

    def decide(self, key: str, label: str) -> dict:
        if label not in LABELS:
            raise ValueError(f"label must be one of {list(LABELS)}, got {label!r}")
        with self.lock:
            item = self._item(key)
            if key in self.decisions or key in self.skips:
                raise ValueError(f"{key!r} already has a decision; undo it first")
            register = item.get("register") if item.get("register") in REGISTERS else self.register
            rec = {"id": key, "doc_id": str(item["doc_id"]), "text": item["text"], "label": label,
                   "domain": item.get("domain") or self.domain, "register": register, "origin": "annotated",
                   "hard": True, "annotator": self.annotator, "annotated_at": _now(), "model_label": item["label"]}
            _fsync_append(self.output, json.dumps(rec, ensure_ascii=False))
            self.decisions[key] = rec
            self.history.append(("decide", key))
        return self.state()

    def skip(self, key: str) -> dict:
        with self.lock:
            self._item(key)
            if key in self.decisions or key in self.skips:
                raise ValueError(f"{key!r} already has a decision; undo it first")
            rec = {"id": key, "annotator": self.annotator, "skipped_at": _now()}
            _fsync_append(self.skipped_path, json.dumps(rec, ensure_ascii=False))
            self.skips[key] = rec
            self.history.append(("skip", key))
        return self.state()

    def undo(self) -> dict:
        with self.lock:
            if not self.history:
                raise ValueError("nothing to undo")
            kind, key = self.history.pop()
            if kind == "decide":
                del self.decisions[key]
                _atomic_rewrite(self.output, [json.dumps(r, ensure_ascii=False) for r in self.decisions.values()])
            else:
                del self.skips[key]
                _atomic_rewrite(self.skipped_path, [json.dumps(r, ensure_ascii=False) for r in self.skips.values()])
        return self.state()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>framing annotate</title>
<style>
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
.ctx{color:#777;margin:.3rem 0}.sent{font-size:1.25rem;background:#fff8d8;padding:.8rem;border-radius:.4rem;margin:.6rem 0}
.bar{display:flex;align-items:center;gap:.5rem;margin:.15rem 0}.bar span.n{width:7rem}.bar div{background:#4a7;height:.8rem}
button{font-size:1rem;margin:.2rem;padding:.4rem .8rem}#status{color:#555}#msg{color:#b00}
</style></head><body>
<h1>framing annotate</h1>
<p id="status"></p>
<div id="item">
 <div id="before"></div><div class="sent" id="text"></div><div id="after"></div>
 <p>Model: <b id="model-label"></b> <span id="reason"></span></p><div id="probs"></div>
 <p id="buttons"></p>
 <p><button id="skip">s &middot; skip</button> <button id="undo">u &middot; undo</button></p>
</div>
<p id="done" hidden>All sentences of the queue have a decision or a skip.
 <button id="undo2">u &middot; undo</button></p>
<p id="msg"></p>
<script>
let state = null, busy = false;
const $ = id => document.getElementById(id);
function lines(el, texts) { el.replaceChildren(...(texts || []).map(t => { const p = document.createElement("p");
  p.className = "ctx"; p.textContent = t; return p; })); }
function render(s) {
  state = s;
  $("status").textContent = `${s.done} labelled, ${s.skipped} skipped, ${s.total} in the queue`;
  const it = s.item;
  $("item").hidden = !it; $("done").hidden = !!it;
  $("undo").disabled = $("undo2").disabled = !s.can_undo;
  if (!it) return;
  lines($("before"), it.context_before); lines($("after"), it.context_after);
  $("text").textContent = it.text; $("text").dataset.key = it.key;
  $("model-label").textContent = it.label; $("reason").textContent = it.reason ? "(" + it.reason + ")" : "";
  $("probs").replaceChildren(...s.labels.map(l => { const r = document.createElement("div"); r.className = "bar";
    const n = document.createElement("span"); n.className = "n"; n.textContent = l;
    const b = document.createElement("div"); const p = (it.probs || {})[l] || 0; b.style.width = (p * 20) + "rem";
    const v = document.createElement("span"); v.textContent = p.toFixed(2); r.append(n, b, v); return r; }));
  $("buttons").replaceChildren(...s.labels.map((l, i) => { const b = document.createElement("button");
    b.textContent = `${i + 1} \\u00b7 ${l}`; b.dataset.label = l; b.onclick = () => act("decide", {label: l}); return b; }));
}
async function call(path, body) {
  const r = await fetch(path, body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  const j = await r.json(); if (!r.ok) throw new Error(j.error || r.statusText); return j;
}
async function act(kind, extra) {
  if (busy) return; busy = true; $("msg").textContent = "";
  try {
    const body = kind === "undo" ? {} : {key: state.item.key, ...extra};
    render(await call("/api/" + kind, body));
  } catch (e) { $("msg").textContent = e.message; } finally { busy = false; }
}
document.addEventListener("keydown", e => {
  if (e.ctrlKey || e.metaKey || e.altKey || !state) return;
  const k = e.key.toLowerCase();
  if (k === "u" && state.can_undo) act("undo");
  else if (!state.item) return;
  else if (k === "s") act("skip");
  else if (k >= "1" && k <= String(state.labels.length)) act("decide", {label: state.labels[Number(k) - 1]});
});
$("skip").onclick = () => act("skip"); $("undo").onclick = $("undo2").onclick = () => act("undo");
call("/api/state").then(render).catch(e => { $("msg").textContent = e.message; });
</script></body></html>
"""


def make_handler(store: AnnotationStore, log=None):
    class Handler(BaseHTTPRequestHandler):
        server_version = "framing-annotate"

        def log_message(self, fmt, *args):  # quiet by default; errors still reach the page
            if log:
                log(fmt % args)

        def _send(self, status, body: bytes, ctype: str):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj, status=HTTPStatus.OK):
            self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

        def do_GET(self):
            if self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.encode("utf-8"), "text/html; charset=utf-8")
            elif self.path == "/api/state":
                self._json(store.state())
            else:
                self._json({"error": f"no such page: {self.path}"}, HTTPStatus.NOT_FOUND)

        def do_POST(self):
            action = {"/api/decide": "decide", "/api/skip": "skip", "/api/undo": "undo"}.get(self.path)
            if action is None:
                return self._json({"error": f"no such action: {self.path}"}, HTTPStatus.NOT_FOUND)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                if action == "undo":
                    result = store.undo()
                elif action == "skip":
                    result = store.skip(str(body.get("key")))
                else:
                    result = store.decide(str(body.get("key")), str(body.get("label")))
            except (KeyError, ValueError) as e:
                msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
                return self._json({"error": str(msg)}, HTTPStatus.BAD_REQUEST)
            self._json(result)

    return Handler


def serve(store: AnnotationStore, host: str = "127.0.0.1", port: int = DEFAULT_PORT, log=None) -> ThreadingHTTPServer:
    """A started-but-not-serving HTTP server for ``store`` (call ``serve_forever``; port 0 picks a free one)."""
    return ThreadingHTTPServer((host, port), make_handler(store, log))


def open_store(queue_path, output, annotator, domain="annotated", register="wire") -> AnnotationStore:
    """Read the queue and any earlier decisions; refuses an output with decisions on other sentences."""
    queue = read_queue(queue_path)
    store = AnnotationStore(queue, output, annotator, domain=domain, register=register)
    foreign = [k for k in list(store.decisions) + list(store.skips) if k not in store.by_key]
    if foreign:
        raise ValueError(f"{output} holds decisions on {len(foreign)} sentence(s) not in {queue_path} "
                         f"(e.g. {foreign[0]!r}); use a new output file for a new queue")
    return store
