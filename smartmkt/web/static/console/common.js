/* What every console page shares: the JSON API client (same-origin cookie session, the CSRF
 * header on unsafe requests, a 401 sends the browser to the login page), the signed-in user,
 * the navigation, and small DOM helpers that only ever set text (textContent), never HTML.
 * Contract: docs/console-api.md. */
"use strict";

window.smartmktConsole = (function () {
  const API = "/console/api";
  let csrfToken = null;

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.error || body.detail)) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  function loginUrl() {
    const here = location.pathname + location.search;
    return "/console/login?next=" + encodeURIComponent(here);
  }

  /* fetch the API: JSON in and out; throws ApiError on a non-2xx (a 401 first redirects). */
  async function api(method, path, body, options) {
    const opts = options || {};
    const headers = { Accept: "application/json" };
    const init = { method: method, credentials: "same-origin", headers: headers };
    if (body !== undefined && body !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (!["GET", "HEAD"].includes(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
    const response = await fetch(API + path, init);
    let data = null;
    if (response.status !== 204) {
      const text = await response.text();
      try {
        data = text ? JSON.parse(text) : null;
      } catch (_err) {
        data = { error: text.slice(0, 200) };
      }
    }
    if (response.status === 401 && !opts.noRedirect) {
      location.assign(loginUrl());
      return new Promise(() => {}); // the page is going away: nothing after this runs
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function setCsrf(token) {
    csrfToken = token || null;
  }

  // --- DOM helpers: text only -------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const n = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === null || v === undefined || v === false) return;
      if (k === "className") n.className = v;
      else if (k === "text") n.textContent = String(v);
      else if (k === "dataset") Object.assign(n.dataset, v);
      else n.setAttribute(k, v === true ? "" : String(v));
    });
    children.flat().forEach((c) => {
      if (c === null || c === undefined || c === false) return;
      n.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return n;
  }

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
  }
  function fmtPercent(x, digits) {
    if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
    return (Number(x) * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }
  function fmtMoney(x) {
    if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
    return "$" + Number(x).toFixed(2);
  }
  function metaList(name) {
    const m = document.querySelector('meta[name="' + name + '"]');
    return m && m.content ? m.content.split(",").filter(Boolean) : [];
  }
  function say(el, text, kind) {
    el.textContent = text || "";
    el.dataset.kind = kind || "";
  }

  // --- the signed-in user and the navigation ------------------------------------------------
  const PAGES = [
    ["/console/conversations", "Conversations"],
    ["/console/dashboard", "Dashboard"],
    ["/console/nlu-reviews", "NLU reviews"],
    ["/console/shop", "Shop"],
    ["/console/users", "Users", "admin"],
  ];

  function renderNav(user) {
    const nav = document.getElementById("console-nav");
    if (!nav) return;
    const list = h("ul", { className: "nav-links" });
    PAGES.forEach(([href, label, role]) => {
      if (role && user.role !== role) return;
      const current = location.pathname === href || location.pathname.startsWith(href + "/");
      list.appendChild(h("li", {}, h("a", { href: href, "aria-current": current ? "page" : null }, label)));
    });
    const logout = h("button", { type: "button", className: "secondary", id: "logout" }, "Log out");
    logout.addEventListener("click", async () => {
      try {
        await api("POST", "/logout", null, { noRedirect: true });
      } finally {
        location.assign("/console/login");
      }
    });
    const who = h("p", { className: "who" }, "Signed in as ", h("strong", { text: user.email }), " (" + user.role + ")");
    nav.replaceChildren(list, h("div", { className: "nav-user" }, who, logout));
  }

  /* Every page but login: who is signed in (401 -> login page), their CSRF token, the nav. */
  async function signedIn() {
    const me = await api("GET", "/me");
    setCsrf(me.csrf_token);
    renderNav(me);
    document.body.dataset.role = me.role;
    return me;
  }

  /* Runs a page: signed in first, then ``main(user)``; a failure is said in #status. */
  function start(main) {
    signedIn()
      .then(main)
      .catch((err) => {
        const status = document.getElementById("status");
        if (status) say(status, "Something went wrong: " + err.message, "error");
      });
  }

  /* The current page's query string as an object, and back. */
  function queryParams() {
    return Object.fromEntries(new URLSearchParams(location.search).entries());
  }
  function toQuery(params) {
    const q = new URLSearchParams();
    Object.entries(params).forEach(([k, v]) => {
      if (v !== undefined && v !== null && v !== "" && v !== false) q.set(k, v === true ? "true" : String(v));
    });
    const s = q.toString();
    return s ? "?" + s : "";
  }

  return { api, ApiError, setCsrf, h, fmtTime, fmtPercent, fmtMoney, metaList, say, start, queryParams, toQuery };
})();
