// The live board: cards from /api/, edits with If-Match, changes from others via /rt/sse.
"use strict";

(() => {
  const root = document.getElementById("board");
  if (!root) return;
  const boardId = root.dataset.boardId;
  const topic = `board.${boardId}`;
  const template = document.getElementById("card-template");
  const status = document.getElementById("live-status");
  const cards = new Map(); // id -> {card, element}
  let lastEventId = "";
  let source = null;

  function columnList(column) {
    return root.querySelector(`.column[data-column="${column}"] .cards`);
  }

  function render(card, flash) {
    let entry = cards.get(card.id);
    if (entry && entry.card.version > card.version) return; // an older copy: keep ours
    if (!entry) {
      const element = template.content.firstElementChild.cloneNode(true);
      entry = { card, element };
      cards.set(card.id, entry);
      bind(entry);
    }
    entry.card = card;
    const { element } = entry;
    const active = document.activeElement;
    // Never overwrite what the user is typing in.
    if (active !== element.querySelector(".title")) element.querySelector(".title").value = card.title;
    if (active !== element.querySelector(".description")) element.querySelector(".description").value = card.description;
    element.querySelector(".column-select").value = card.column;
    element.querySelector(".version").textContent = `v${card.version}`;
    element.classList.remove("conflict");
    const list = columnList(card.column);
    const siblings = [...list.children].filter((item) => item !== element);
    const before = siblings.find((item) => {
      const other = [...cards.values()].find((e) => e.element === item).card;
      return other.position > card.position || (other.position === card.position && other.id > card.id);
    });
    list.insertBefore(element, before || null);
    if (flash) {
      element.classList.add("flash");
      setTimeout(() => element.classList.remove("flash"), 800);
    }
  }

  function remove(id) {
    const entry = cards.get(id);
    if (entry) entry.element.remove();
    cards.delete(id);
  }

  async function save(entry, changes) {
    try {
      const { data } = await api("PATCH", `/api/cards/${entry.card.id}/`, changes, { "If-Match": `"${entry.card.version}"` });
      render(data, false);
      showError(null);
    } catch (error) {
      if (error.status === 412) {
        // Someone else changed it first: show theirs, keep nothing silently.
        entry.element.classList.add("conflict");
        showError(new Error("This card was changed by someone else; it now shows their version. Reapply your change."));
        const { data } = await api("GET", `/api/cards/${entry.card.id}/`);
        entry.card.version = 0;
        render(data, true);
        entry.element.classList.add("conflict");
      } else {
        showError(error);
      }
    }
  }

  function bind(entry) {
    const { element } = entry;
    element.querySelector(".title").addEventListener("change", (e) => save(entry, { title: e.target.value }));
    element.querySelector(".description").addEventListener("change", (e) => save(entry, { description: e.target.value }));
    element.querySelector(".column-select").addEventListener("change", (e) => save(entry, { column: e.target.value }));
    element.querySelector(".delete").addEventListener("click", async () => {
      try {
        await api("DELETE", `/api/cards/${entry.card.id}/`, undefined, { "If-Match": `"${entry.card.version}"` });
        remove(entry.card.id);
      } catch (error) { showError(error); }
    });
  }

  async function loadAll() {
    let url = `/api/boards/${boardId}/cards/?page_size=200`;
    const seen = new Set();
    while (url) {
      const { data } = await api("GET", url);
      data.results.forEach((card) => seen.add(card.id));
      data.results.forEach((card) => render(card, false));
      url = data.next;
    }
    [...cards.keys()].filter((id) => !seen.has(id)).forEach(remove);
  }

  function apply(payload) {
    const event = payload && payload.type === "event" && payload.event ? payload.event : payload;
    if (!event || event.topic !== topic) return;
    if (event.id) lastEventId = event.id;
    if (event.type === "card.created" || event.type === "card.updated") {
      render(event.data, true);
    } else if (event.type === "card.deleted") {
      remove(event.data.id);
    } else if (event.type === "board.updated") {
      document.querySelector("main h1").textContent = event.data.name;
      document.title = event.data.name;
    } else if (event.type === "board.deleted") {
      location.href = "/";
    }
  }

  async function token() {
    // Sets the HttpOnly rt_token cookie (Path=/rt/): the token never appears in a URL.
    const { data } = await api("POST", "/api/realtime/token");
    setTimeout(token, Math.max(30, data.expires_in * 0.8) * 1000);
  }

  function connect() {
    if (source) source.close();
    const params = new URLSearchParams({ topics: topic });
    if (lastEventId) params.set("last_event_id", lastEventId);
    source = new EventSource(`/rt/sse?${params}`);
    source.onopen = () => { status.textContent = "connected"; };
    source.onerror = () => {
      status.textContent = "reconnecting…";
      if (source.readyState === EventSource.CLOSED) setTimeout(async () => { await token().catch(() => {}); connect(); }, 2000);
    };
    const handle = (message) => { try { apply(JSON.parse(message.data)); } catch (_) { /* not ours */ } };
    for (const name of ["message", "event", "card.created", "card.updated", "card.deleted", "board.updated", "board.deleted"]) {
      source.addEventListener(name, handle);
    }
    source.addEventListener("resync", () => loadAll().catch(showError));
  }

  document.getElementById("new-card").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const column = "todo";
    const position = [...cards.values()].filter((e) => e.card.column === column).reduce((max, e) => Math.max(max, e.card.position + 1), 0);
    try {
      const { data } = await api("POST", `/api/boards/${boardId}/cards/`, { title: new FormData(form).get("title"), column, position });
      render(data, false);
      form.reset();
    } catch (error) { showError(error); }
  });

  loadAll().catch(showError);
  token().then(connect).catch((error) => { status.textContent = "offline"; showError(error); });
})();
