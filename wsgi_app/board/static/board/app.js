// Shared helpers: JSON calls to /api/ with Django's CSRF header, login/logout, new board.
"use strict";

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(method, path, body, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.statusText);
    error.status = response.status;
    error.body = data;
    throw error;
  }
  return { data, response };
}

function showError(error) {
  const element = document.getElementById("error");
  if (!element) return;
  element.textContent = error ? error.message : "";
  element.hidden = !error;
}

document.addEventListener("DOMContentLoaded", () => {
  const login = document.getElementById("login");
  if (login) {
    login.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(login);
      try {
        await api("POST", "/api/auth/login", { username: form.get("username"), password: form.get("password") });
        location.reload();
      } catch (error) { showError(error); }
    });
  }
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      await api("POST", "/api/auth/logout").catch(() => {});
      location.href = "/";
    });
  }
  const newBoard = document.getElementById("new-board");
  if (newBoard) {
    newBoard.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const { data } = await api("POST", "/api/boards/", { name: new FormData(newBoard).get("name") });
        location.href = `/boards/${data.id}/`;
      } catch (error) { showError(error); }
    });
  }
});
