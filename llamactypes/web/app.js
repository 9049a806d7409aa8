// llamactypes chat page: streams /v1/chat/completions (SSE over fetch), keeps conversations in
// localStorage, renders Markdown through marked + DOMPurify (the model's output is untrusted:
// never injected as raw HTML), shows reasoning collapsed, tool calls, tokens/s and context use.
"use strict";

(function () {
  const STORE = "llamactypes.conversations";
  const CURRENT = "llamactypes.current";
  const SETTINGS = "llamactypes.settings";
  const KEY = "llamactypes.apiKey";
  const $ = (id) => document.getElementById(id);

  const state = {
    conversations: load(STORE, []),
    currentId: localStorage.getItem(CURRENT),
    settings: load(SETTINGS, { system: "", maxTokens: "", temperature: "" }),
    apiKey: sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "",
    model: null,
    nCtx: null,
    controller: null,
  };

  function load(key, fallback) {
    try {
      const value = JSON.parse(localStorage.getItem(key));
      return value === null ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(state.conversations));
      localStorage.setItem(CURRENT, state.currentId || "");
      localStorage.setItem(SETTINGS, JSON.stringify(state.settings));
    } catch (e) {
      showError("could not save the conversation in this browser: " + e.message);
    }
  }

  function current() {
    let conv = state.conversations.find((c) => c.id === state.currentId);
    if (!conv) {
      conv = { id: String(Date.now()) + Math.random().toString(16).slice(2, 6), title: "New chat", messages: [] };
      state.conversations.unshift(conv);
      state.currentId = conv.id;
    }
    return conv;
  }

  // ---------------------------------------------------------------- rendering
  function markdown(text) {
    if (window.marked && window.DOMPurify) {
      const html = window.marked.parse(text, { gfm: true, breaks: false });
      return { html: window.DOMPurify.sanitize(html, { USE_PROFILES: { html: true } }) };
    }
    return { text: text }; // libraries missing: plain text, never HTML
  }

  function fillContent(node, text) {
    const out = markdown(text);
    if (out.html !== undefined) {
      node.classList.remove("plain");
      node.innerHTML = out.html; // sanitized by DOMPurify
    } else {
      node.classList.add("plain");
      node.textContent = out.text;
    }
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderMessage(msg) {
    const box = el("div", "msg " + msg.role);
    box.appendChild(el("div", "role", msg.role));
    if (msg.reasoning) {
      const details = el("details", "reasoning");
      details.appendChild(el("summary", "", "Reasoning"));
      details.appendChild(el("div", "reasoning-text", msg.reasoning));
      box.appendChild(details);
    }
    const content = el("div", "content");
    if (msg.role === "assistant") fillContent(content, msg.content || "");
    else {
      content.classList.add("plain");
      content.textContent = msg.content || "";
    }
    box.appendChild(content);
    for (const call of msg.tool_calls || []) {
      const details = el("details", "tool-call");
      details.open = true;
      details.appendChild(el("summary", "", "Tool call: " + (call.name || "?")));
      details.appendChild(el("pre", "", call.arguments || ""));
      box.appendChild(details);
    }
    if (msg.note) box.appendChild(el("div", "note", msg.note));
    return box;
  }

  function renderMessages() {
    const list = $("messages");
    list.textContent = "";
    for (const msg of current().messages) list.appendChild(renderMessage(msg));
    list.scrollTop = list.scrollHeight;
  }

  function renderConversations() {
    const list = $("conversations");
    list.textContent = "";
    for (const conv of state.conversations) {
      const item = el("li", conv.id === state.currentId ? "active" : "");
      const open = el("button", "open", conv.title || "New chat");
      open.type = "button";
      open.onclick = () => { if (!state.controller) { state.currentId = conv.id; save(); renderAll(); } };
      const del = el("button", "delete", "×");
      del.type = "button";
      del.title = "Delete";
      del.onclick = () => {
        if (state.controller) return;
        state.conversations = state.conversations.filter((c) => c.id !== conv.id);
        if (state.currentId === conv.id) state.currentId = null;
        save();
        renderAll();
      };
      item.append(open, del);
      list.appendChild(item);
    }
  }

  function renderAll() {
    current();
    renderConversations();
    renderMessages();
    $("system").value = state.settings.system || "";
    $("max-tokens").value = state.settings.maxTokens || "";
    $("temperature").value = state.settings.temperature || "";
  }

  function showError(text) {
    const box = $("error");
    box.hidden = !text;
    box.textContent = text || "";
  }

  function setBusy(busy) {
    $("send").hidden = busy;
    $("stop").hidden = !busy;
    $("new-chat").disabled = busy;
  }

  // ---------------------------------------------------------------- server
  function headers() {
    const h = { "Content-Type": "application/json" };
    if (state.apiKey) h["Authorization"] = "Bearer " + state.apiKey;
    return h;
  }

  function needKey(message) {
    $("key-box").hidden = false;
    showError(message || "This server needs an API key: enter it in the sidebar.");
    document.getElementById("app").classList.add("show-sidebar");
    $("api-key").focus();
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      const err = body.error || body;
      return (err && err.message) || JSON.stringify(body);
    } catch (e) {
      return response.status + " " + response.statusText;
    }
  }

  async function fetchModel() {
    try {
      const response = await fetch("/v1/models", { headers: headers() });
      if (response.status === 401) return needKey();
      if (!response.ok) return showError(await errorText(response));
      const body = await response.json();
      const model = (body.data || [])[0] || {};
      state.model = model.id || null;
      state.nCtx = (model.meta && model.meta.n_ctx) || null;
      $("model").textContent = state.model || "(no model)";
      showError("");
    } catch (e) {
      showError("the server does not answer: " + e.message);
    }
  }

  function requestBody(conv) {
    const messages = [];
    const system = (state.settings.system || "").trim();
    if (system) messages.push({ role: "system", content: system });
    for (const m of conv.messages) {
      if (m.role === "user" || (m.role === "assistant" && m.content)) messages.push({ role: m.role, content: m.content });
    }
    const body = { messages: messages, stream: true, stream_options: { include_usage: true } };
    if (state.model) body.model = state.model;
    const maxTokens = parseInt(state.settings.maxTokens, 10);
    if (maxTokens > 0) body.max_tokens = maxTokens;
    const temperature = parseFloat(state.settings.temperature);
    if (!Number.isNaN(temperature)) body.temperature = temperature;
    return body;
  }

  // Parses an SSE byte stream into the JSON of each `data:` event; stops at [DONE].
  async function* sseEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
        if (!data) continue; // a comment (keep-alive)
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }

  function applyChunk(msg, chunk) {
    if (chunk.error) throw new Error(chunk.error.message || JSON.stringify(chunk.error));
    if (chunk.usage) msg.usage = chunk.usage;
    for (const choice of chunk.choices || []) {
      const delta = choice.delta || {};
      if (delta.content) msg.content += delta.content;
      if (delta.reasoning_content) msg.reasoning = (msg.reasoning || "") + delta.reasoning_content;
      for (const part of delta.tool_calls || []) {
        msg.tool_calls = msg.tool_calls || [];
        const i = part.index || 0;
        const call = msg.tool_calls[i] || (msg.tool_calls[i] = { name: "", arguments: "" });
        if (part.function && part.function.name) call.name += part.function.name;
        if (part.function && part.function.arguments) call.arguments += part.function.arguments;
      }
      if (choice.finish_reason) msg.finish_reason = choice.finish_reason;
    }
  }

  function stats(msg, firstAt) {
    const parts = [];
    const usage = msg.usage;
    if (usage && usage.completion_tokens && firstAt) {
      const seconds = (performance.now() - firstAt) / 1000;
      if (seconds > 0 && usage.completion_tokens > 1) {
        parts.push(((usage.completion_tokens - 1) / seconds).toFixed(1) + " tokens/s");
      }
    }
    if (usage && usage.total_tokens !== undefined) {
      parts.push("context " + usage.total_tokens + (state.nCtx ? " / " + state.nCtx : "") + " tokens");
    }
    return parts.join(" · ");
  }

  async function send(text) {
    const conv = current();
    showError("");
    conv.messages.push({ role: "user", content: text });
    if (conv.title === "New chat") conv.title = text.slice(0, 40);
    const msg = { role: "assistant", content: "" };
    conv.messages.push(msg);
    save();
    renderConversations();
    renderMessages();
    const node = $("messages").lastChild;
    const controller = new AbortController();
    state.controller = controller;
    setBusy(true);
    let firstAt = null;
    let pending = false;
    let live = node;
    let dropped = false;
    const schedule = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        const fresh = renderMessage(msg);
        live.replaceWith(fresh);
        live = fresh;
        const list = $("messages");
        list.scrollTop = list.scrollHeight;
      });
    };
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST", headers: headers(), body: JSON.stringify(requestBody(conv)),
        signal: controller.signal,
      });
      if (response.status === 401) {
        dropped = true;
        conv.messages.splice(-2, 2); // not sent: the message goes back into the input
        $("input").value = text;
        needKey();
        return;
      }
      if (!response.ok) throw new Error(await errorText(response));
      for await (const chunk of sseEvents(response)) {
        applyChunk(msg, chunk);
        if (firstAt === null && (msg.content || msg.reasoning || msg.tool_calls)) firstAt = performance.now();
        schedule();
      }
      $("stats").textContent = stats(msg, firstAt);
    } catch (e) {
      if (e.name === "AbortError") msg.note = "[stopped]";
      else {
        msg.note = "[error]";
        showError(e.message);
      }
    } finally {
      state.controller = null;
      setBusy(false);
      if (!dropped && !msg.content && !msg.reasoning && !msg.tool_calls && !msg.note) msg.note = "[empty reply]";
      save();
      if (dropped || !live.isConnected) renderMessages();
      else live.replaceWith(renderMessage(msg));
    }
  }

  // ---------------------------------------------------------------- wiring
  function init() {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("input").value.trim();
      if (!text || state.controller) return;
      $("input").value = "";
      send(text);
    });
    $("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("stop").addEventListener("click", () => { if (state.controller) state.controller.abort(); });
    $("new-chat").addEventListener("click", () => {
      state.currentId = null;
      current();
      save();
      renderAll();
      $("stats").textContent = "";
    });
    $("toggle-sidebar").addEventListener("click", () => document.getElementById("app").classList.toggle("show-sidebar"));
    $("system").addEventListener("change", () => { state.settings.system = $("system").value; save(); });
    $("max-tokens").addEventListener("change", () => { state.settings.maxTokens = $("max-tokens").value; save(); });
    $("temperature").addEventListener("change", () => { state.settings.temperature = $("temperature").value; save(); });
    $("save-key").addEventListener("click", () => {
      state.apiKey = $("api-key").value.trim();
      sessionStorage.setItem(KEY, state.apiKey); // the key stays for this tab only
      $("key-box").hidden = true;
      fetchModel();
    });
    renderAll();
    fetchModel();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
