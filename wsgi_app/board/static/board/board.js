// The live board: cards from /api/, edits with If-Match, drag and drop between columns,
// changes and presence from others over /rt/ws, sharing by invitation (owner only).
"use strict";

(() => {
  const root = document.getElementById("board");
  if (!root) return;
  const boardId = root.dataset.boardId;
  const me = Number(root.dataset.userId);
  const topic = `board.${boardId}`;
  const template = document.getElementById("card-template");
  const status = document.getElementById("live-status");
  const people = JSON.parse(document.getElementById("people").textContent); // id -> username
  const present = new Set();
  const cards = new Map(); // id -> {card, element}
  let lastEventId = "";
  let socket = null;
  let dragged = null;

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

  function endOf(column) {
    return [...cards.values()].filter((e) => e.card.column === column).reduce((max, e) => Math.max(max, e.card.position + 1), 0);
  }

  function bind(entry) {
    const { element } = entry;
    element.querySelector(".title").addEventListener("change", (e) => save(entry, { title: e.target.value }));
    element.querySelector(".description").addEventListener("change", (e) => save(entry, { description: e.target.value }));
    element.querySelector(".column-select").addEventListener("change", (e) => save(entry, { column: e.target.value, position: endOf(e.target.value) }));
    element.querySelector(".delete").addEventListener("click", async () => {
      try {
        await api("DELETE", `/api/cards/${entry.card.id}/`, undefined, { "If-Match": `"${entry.card.version}"` });
        remove(entry.card.id);
      } catch (error) { showError(error); }
    });
    element.addEventListener("dragstart", (e) => {
      dragged = entry;
      e.dataTransfer.effectAllowed = "move";
      element.classList.add("dragging");
    });
    element.addEventListener("dragend", () => { element.classList.remove("dragging"); dragged = null; });
  }

  // Drop on a card: take its place (it moves down); on a column's free space: go last.
  for (const column of root.querySelectorAll(".column")) {
    column.addEventListener("dragover", (e) => { if (dragged) { e.preventDefault(); column.classList.add("drop"); } });
    column.addEventListener("dragleave", () => column.classList.remove("drop"));
    column.addEventListener("drop", (e) => {
      e.preventDefault();
      column.classList.remove("drop");
      if (!dragged) return;
      const target = e.target.closest(".card");
      const over = target && [...cards.values()].find((x) => x.element === target);
      const name = column.dataset.column;
      const position = over && over !== dragged ? over.card.position : endOf(name);
      if (dragged.card.column !== name || dragged.card.position !== position) save(dragged, { column: name, position });
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

  function showPresence() {
    const names = [...present].map((id) => people[id] || `user ${id}`).sort();
    document.getElementById("presence").textContent = names.join(", ") || "—";
  }

  function apply(event) {
    if (event.topic !== topic) return;
    lastEventId = event.id;
    const { type, data } = event;
    if (type === "card.created" || type === "card.updated") {
      render(data, true);
    } else if (type === "card.deleted") {
      remove(data.id);
    } else if (type === "board.updated") {
      document.querySelector("main h1").textContent = data.name;
      document.title = data.name;
    } else if (type === "board.deleted") {
      location.href = "/";
    } else if (type === "presence.joined" || type === "presence.left") {
      if (data.name) people[data.user] = data.name;
      if (type === "presence.joined") present.add(data.user); else present.delete(data.user);
      showPresence();
    }
  }

  async function token() {
    // Sets the HttpOnly rt_token cookie (Path=/rt/); an open socket gets it as `auth`.
    const { data } = await api("POST", "/api/realtime/token");
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "auth", token: data.token }));
    setTimeout(() => token().catch(() => {}), Math.max(30, data.expires_in * 0.8) * 1000);
  }

  function connect() {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/rt/ws`);
    socket.onopen = () => {
      const message = { type: "subscribe", topics: [topic] };
      if (lastEventId) message.last_event_id = lastEventId;
      socket.send(JSON.stringify(message));
    };
    socket.onmessage = (message) => {
      const msg = JSON.parse(message.data);
      if (msg.type === "subscribed") {
        status.textContent = "connected";
        present.clear();
        (msg.presence[topic] || []).forEach((id) => present.add(id));
        showPresence();
      } else if (msg.type === "event") {
        apply(msg.event);
      } else if (msg.type === "resync") {
        loadAll().catch(showError);
      } else if (msg.type === "unsubscribed" && msg.reason === "revoked") {
        location.href = "/"; // no longer a member of this board
      } else if (msg.type === "error") {
        showError(new Error(msg.message));
      }
    };
    socket.onclose = (event) => {
      status.textContent = "reconnecting…";
      const delay = event.code === 1008 ? 0 : 2000; // 1008: token expired or refused: renew first
      setTimeout(async () => { await token().catch(() => {}); connect(); }, delay + Math.random() * 1000);
    };
  }

  document.getElementById("new-card").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const { data } = await api("POST", `/api/boards/${boardId}/cards/`, { title: new FormData(form).get("title"), column: "todo", position: endOf("todo") });
      render(data, false);
      form.reset();
    } catch (error) { showError(error); }
  });

  // Sharing (the owner's page only): invitations by username, members removed by the owner.
  const invite = document.getElementById("invite");
  async function loadSharing() {
    const [{ data: board }, { data: invited }] = await Promise.all([
      api("GET", `/api/boards/${boardId}/`), api("GET", `/api/boards/${boardId}/invitations/`),
    ]);
    const list = (id, items, label, action) => {
      const element = document.getElementById(id);
      element.replaceChildren(...items.map((item) => {
        const li = document.createElement("li");
        li.textContent = `${label(item)} `;
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Remove";
        button.addEventListener("click", () => action(item).then(loadSharing).catch(showError));
        li.append(button);
        return li;
      }));
    };
    list("members", board.members, (name) => name, (name) =>
      api("PATCH", `/api/boards/${boardId}/`, { members: board.members.filter((m) => m !== name) }));
    list("invited", invited.results, (inv) => inv.username, (inv) =>
      api("DELETE", `/api/boards/${boardId}/invitations/${inv.id}/`));
  }
  if (invite) {
    invite.addEventListener("submit", async (event) => {
      event.preventDefault();
      const note = document.getElementById("invite-status");
      try {
        const { data } = await api("POST", `/api/boards/${boardId}/invitations/`, { username: new FormData(invite).get("username") });
        note.textContent = data.detail;
        note.hidden = false;
        invite.reset();
        await loadSharing();
      } catch (error) { showError(error); }
    });
    loadSharing().catch(showError);
  }

  loadAll().catch(showError);
  token().then(connect).catch((error) => { status.textContent = "offline"; showError(error); });
})();
