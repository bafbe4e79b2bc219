/* The conversation list: filters (kept in the address bar, so a filtered view is a link), keyset
 * pages (next_cursor; earlier cursors kept for "previous"), the CSV export of the same filters. */
"use strict";

(function () {
  const C = window.smartmktConsole;
  const { h } = C;
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#results tbody");
  const status = document.getElementById("status");
  const csv = document.getElementById("csv");
  const buttons = { first: document.getElementById("first"), prev: document.getElementById("prev"), next: document.getElementById("next") };
  const pageNo = document.getElementById("page-no");
  const FILTERS = ["from", "to", "channel", "intent", "offer", "customer", "q", "low_confidence", "fallback"];
  const PAGE_SIZE = 25;

  const intentSelect = document.getElementById("f-intent");
  C.metaList("smartmkt-intents").forEach((name) => intentSelect.appendChild(h("option", { value: name }, name)));

  let cursors = [null]; // cursors[i] opens page i+1
  let nextCursor = null;

  function filtersFromForm() {
    const out = {};
    FILTERS.forEach((name) => {
      const input = form.elements[name];
      if (!input) return;
      if (input.type === "checkbox") {
        if (input.checked) out[name] = "true";
      } else if (input.value.trim()) out[name] = input.value.trim();
    });
    return out;
  }
  function formFromFilters(params) {
    FILTERS.forEach((name) => {
      const input = form.elements[name];
      if (!input) return;
      if (input.type === "checkbox") input.checked = params[name] === "true";
      else input.value = params[name] || "";
    });
  }

  function intentsCell(intents) {
    return h("td", {}, (intents || []).map((i) => h("span", { className: "tag" }, i)));
  }
  function offersCell(item) {
    const parts = [];
    if (item.offers_made) parts.push(h("span", { className: "tag offer" }, item.offers_made + " made"));
    if (item.offers_accepted) parts.push(h("span", { className: "tag offer" }, item.offers_accepted + " accepted"));
    if (item.offers_declined) parts.push(h("span", { className: "tag" }, item.offers_declined + " declined"));
    return h("td", {}, parts.length ? parts : "–");
  }
  function row(item) {
    const link = h("a", { href: "/console/conversations/" + encodeURIComponent(item.sender_id) }, item.customer_ref || item.sender_id);
    const turns = [String(item.turns)];
    const flags = [];
    if (item.voice_turns) flags.push(h("span", { className: "tag voice" }, item.voice_turns + " voice"));
    if (item.fallback) flags.push(h("span", { className: "tag warn" }, "fallback"));
    return h(
      "tr",
      { dataset: { sender: item.sender_id } },
      h("th", { scope: "row" }, link),
      h("td", {}, C.fmtTime(item.started_at)),
      h("td", {}, C.fmtTime(item.last_event_at)),
      h("td", { className: "num" }, turns, flags.length ? h("br") : null, flags),
      intentsCell(item.intents),
      h("td", { className: "num" }, C.fmtPercent(item.min_confidence)),
      offersCell(item),
      h("td", { className: "text" }, item.first_message || "")
    );
  }

  async function load(pageIndex) {
    const filters = filtersFromForm();
    csv.href = "/console/api/conversations.csv" + C.toQuery(filters);
    const params = Object.assign({}, filters, { limit: PAGE_SIZE });
    if (cursors[pageIndex]) params.cursor = cursors[pageIndex];
    C.say(status, "Loading…");
    tbody.setAttribute("aria-busy", "true");
    try {
      const data = await C.api("GET", "/conversations" + C.toQuery(params));
      const items = (data && data.items) || [];
      tbody.replaceChildren(...items.map(row));
      nextCursor = data.next_cursor || null;
      cursors = cursors.slice(0, pageIndex + 1);
      if (nextCursor) cursors.push(nextCursor);
      buttons.next.disabled = !nextCursor;
      buttons.prev.disabled = pageIndex === 0;
      buttons.first.disabled = pageIndex === 0;
      pageNo.textContent = "Page " + (pageIndex + 1);
      current = pageIndex;
      C.say(status, items.length ? items.length + " conversation" + (items.length === 1 ? "" : "s") + " on this page." : "No conversations match these filters.");
      if (!items.length) tbody.replaceChildren(h("tr", {}, h("td", { colspan: "8" }, "No conversations match these filters.")));
    } catch (err) {
      C.say(status, "Could not load conversations: " + err.message, "error");
    } finally {
      tbody.removeAttribute("aria-busy");
    }
  }
  let current = 0;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filters = filtersFromForm();
    history.pushState(filters, "", location.pathname + C.toQuery(filters));
    cursors = [null];
    load(0);
  });
  document.getElementById("reset").addEventListener("click", () => {
    formFromFilters({});
    history.pushState({}, "", location.pathname);
    cursors = [null];
    load(0);
  });
  window.addEventListener("popstate", () => {
    formFromFilters(C.queryParams());
    cursors = [null];
    load(0);
  });
  buttons.next.addEventListener("click", () => nextCursor && load(current + 1));
  buttons.prev.addEventListener("click", () => current > 0 && load(current - 1));
  buttons.first.addEventListener("click", () => load(0));

  C.start(() => {
    formFromFilters(C.queryParams());
    return load(0);
  });
})();
