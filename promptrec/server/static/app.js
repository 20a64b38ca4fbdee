// promptrec web chat. Every piece of text from the server or the user is inserted with
// textContent (markup is never parsed from data), and the page's Content-Security-Policy allows only this script.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { busy: false, items: [] };

function sessionId() {
  let id = sessionStorage.getItem("promptrec-session");
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("promptrec-session", id);
  }
  return id;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function say(kind, text) {
  const box = $("conversation");
  box.appendChild(el("div", "msg " + kind, text));
  box.scrollTop = box.scrollHeight;
}

function setBusy(busy) {
  state.busy = busy;
  $("send").disabled = busy;
  document.querySelectorAll(".item button").forEach((b) => { b.disabled = busy; });
}

function describe(understood) {
  if (typeof understood === "string") return understood.replace(/^understood:\s*/i, "");
  return Object.entries(understood)
    .filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => k + ": " + (Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : v))
    .join(" · ");
}

function renderList(list, waiting) {
  state.items = list.items;
  const understood = $("understood");
  if (list.understood) {
    understood.textContent = "Understood as: " + describe(list.understood);
    understood.hidden = false;
  } else {
    understood.hidden = true;
  }
  $("pending").hidden = !waiting;
  const ol = $("items");
  ol.replaceChildren();
  for (const item of list.items) {
    const li = el("li", "item");
    li.dataset.itemId = item.item_id;
    li.appendChild(el("div", "title", item.title));
    li.appendChild(el("p", "reason", item.explanation));
    li.appendChild(el("span", "source " + item.explained_by, sourceText(item.explained_by, item.explanation_note)));
    const actions = el("div", "actions");
    const button = (label, action, line, shown) => {
      const b = el("button", action, label);
      b.type = "button";
      b.disabled = state.busy;
      b.addEventListener("click", () => send(line, shown));
      actions.appendChild(b);
    };
    button("why", "why", "/why #" + item.rank, "why " + item.title + "?");
    button("not this", "not-this", "/exclude " + item.item_id, "not " + item.title);
    button("more like this", "more-like", "/like " + item.item_id, "more like " + item.title);
    li.appendChild(actions);
    ol.appendChild(li);
  }
}

function sourceText(by, note) {
  if (by === "llm") return "explained by the model";
  return note ? "evidence (" + note + ")" : "evidence";
}

function explain(event) {
  const li = document.querySelector('.item[data-item-id="' + CSS.escape(event.item_id) + '"]');
  if (!li) return;
  li.querySelector(".reason").textContent = event.explanation;
  const source = li.querySelector(".source");
  source.className = "source " + event.explained_by;
  source.textContent = sourceText(event.explained_by, event.note);
}

function handle(name, data) {
  if (name === "reply") { if (data.text) say("bot", data.text); }
  else if (name === "list") renderList(data, true);
  else if (name === "explanation") explain(data);
  else if (name === "final") renderList(data, false);
  else if (name === "error") { $("pending").hidden = true; say("error", "The model could not answer (" + data.status + "): " + data.detail); }
}

function parseFrame(frame) {
  let name = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) handle(name, JSON.parse(data.join("\n")));
}

async function send(line, shown) {
  if (state.busy || !line.trim()) return;
  say("you", shown || line);
  setBusy(true);
  try {
    const resp = await fetch("/chat/" + encodeURIComponent(sessionId()), {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify({ text: line }),
    });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      say("error", "Error " + resp.status + ": " + (typeof body.detail === "string" ? body.detail : resp.statusText));
      return;
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        parseFrame(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  } catch (err) {
    say("error", "Connection problem: " + err.message);
  } finally {
    $("pending").hidden = true;
    setBusy(false);
  }
}

async function health() {
  try {
    const resp = await fetch("/healthz");
    const h = await resp.json();
    $("status").textContent = h.dataset + " · " + h.items + " items · " + (h.model ? "model " + h.model.split("@")[0] : "no model (evidence only)");
  } catch (err) {
    $("status").textContent = "server unreachable";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("line");
    const line = input.value;
    input.value = "";
    send(line);
  });
  health();
  say("bot", "Pick a user with /user ID, or tell me what you like, e.g. \"more like Toy Story (1995)\".");
  $("line").focus();
});
