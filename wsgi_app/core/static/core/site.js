// The site's helpers: JSON calls to /api/ with Django's CSRF header; log in, sign up, log out.
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
    const error = new Error(errorMessage(data) || response.statusText);
    error.status = response.status;
    error.body = data;
    throw error;
  }
  return { data, response };
}

function errorMessage(data) {
  const error = data && data.error;
  if (!error) return "";
  const fields = Object.values(error.fields || {}).flat();
  return fields.length ? fields.join(" ") : error.message;
}

function showError(error) {
  const element = document.getElementById("error");
  if (!element) return;
  element.textContent = error ? error.message : "";
  element.hidden = !error;
}

// After logging in, go where the login page was asked for, never off this site.
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function submitCredentials(form, path) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      await api("POST", path, { username: data.get("username"), password: data.get("password") });
      location.href = nextPage();
    } catch (error) { showError(error); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const login = document.getElementById("login");
  if (login) submitCredentials(login, "/api/auth/login");
  const signup = document.getElementById("signup");
  if (signup) submitCredentials(signup, "/api/auth/signup");
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      await api("POST", "/api/auth/logout").catch(() => {});
      location.href = "/";
    });
  }
});
