/* Dashboard: GET /console/api/dashboard?from&to drawn with Chart.js (served by the app from
 * npm, never a CDN). Every chart also has its numbers as a table, for screen readers and for
 * copying. */
"use strict";

(function () {
  const C = window.smartmktConsole;
  const { h } = C;
  const form = document.getElementById("range");
  const status = document.getElementById("status");
  const charts = {};
  const BLUE = "#1d5fbf";
  const PURPLE = "#7a4fd0";
  const ORANGE = "#c2410c";

  function table(caption, headers, rows) {
    return h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((x, i) => h("th", { scope: "col", className: i ? "num" : null }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i ? h("td", { className: "num" }, c) : h("th", { scope: "row" }, c))))))
    );
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    if (typeof window.Chart !== "function") return; // the numbers are still in the tables
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  function kpi(label, value) {
    return h("li", { className: "kpi" }, h("span", { className: "value" }, value), h("span", { className: "label" }, label));
  }

  function render(d) {
    const days = d.per_day || [];
    const intents = d.top_intents || [];
    const offers = d.offers || {};
    const total = typeof d.conversations === "number" ? d.conversations : days.reduce((n, x) => n + (x.conversations || 0), 0);
    document.getElementById("kpis").replaceChildren(
      kpi("Conversations", String(total)),
      kpi("Voice share", C.fmtPercent(d.voice_share)),
      kpi("Fallback rate", C.fmtPercent(d.fallback_rate)),
      kpi("Offers made", String(offers.made || 0)),
      kpi("Offers accepted", String(offers.accepted || 0)),
      kpi("Offers declined", String(offers.declined || 0)),
      kpi("Offer conversion", C.fmtPercent(offers.conversion)),
      kpi("Discount spent", C.fmtMoney((offers.discount_spent_cents || 0) / 100))
    );

    draw("c-days", {
      type: "bar",
      data: {
        labels: days.map((x) => x.day),
        datasets: [
          { label: "Conversations", data: days.map((x) => x.conversations), backgroundColor: BLUE },
          { label: "With voice", data: days.map((x) => x.voice_conversations), backgroundColor: PURPLE },
        ],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    document.getElementById("t-days").replaceChildren(
      table("Conversations per day", ["Day", "Conversations", "With voice"], days.map((x) => [x.day, x.conversations, x.voice_conversations]))
    );

    draw("c-intents", {
      type: "bar",
      data: { labels: intents.map((x) => x.intent), datasets: [{ label: "Messages", data: intents.map((x) => x.count), backgroundColor: BLUE }] },
      options: { indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    document.getElementById("t-intents").replaceChildren(table("Top intents", ["Intent", "Messages"], intents.map((x) => [x.intent, x.count])));

    draw("c-offers", {
      type: "bar",
      data: {
        labels: ["Made", "Accepted", "Declined"],
        datasets: [{ label: "Offers", data: [offers.made || 0, offers.accepted || 0, offers.declined || 0], backgroundColor: [BLUE, "#15803d", ORANGE] }],
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    document.getElementById("c-offers").setAttribute(
      "aria-label",
      "Offers: " + (offers.made || 0) + " made, " + (offers.accepted || 0) + " accepted, " + (offers.declined || 0) + " declined"
    );

    const rows = [];
    Object.entries(d.models || {}).forEach(([kind, metrics]) => {
      Object.entries(metrics || {}).forEach(([metric, value]) => {
        rows.push([kind, metric, typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(4)) : String(value)]);
      });
    });
    const models = document.getElementById("models");
    // figures resting on too few held-out positives are flagged, never shown bare
    const warnings = Object.entries(d.model_warnings || {}).map(([kind, text]) =>
      h("p", { className: "status warning", role: "note" }, "Warning: " + kind + ": " + text)
    );
    if (!rows.length) models.replaceChildren(h("p", { className: "status" }, "No evaluated model is served yet."));
    else
      models.replaceChildren(
        ...warnings,
        h(
          "table",
          {},
          h("caption", {}, "Figures on each model's held-out data (smartmkt eval)"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Model"), h("th", { scope: "col" }, "Metric"), h("th", { scope: "col", className: "num" }, "Value"))),
          h("tbody", {}, rows.map((r) => h("tr", {}, h("th", { scope: "row" }, r[0]), h("td", {}, r[1]), h("td", { className: "num" }, r[2]))))
        )
      );
  }

  async function load() {
    const params = {};
    if (form.from.value) params.from = form.from.value;
    if (form.to.value) params.to = form.to.value;
    C.say(status, "Loading…");
    try {
      render(await C.api("GET", "/dashboard" + C.toQuery(params)));
      C.say(status, "");
    } catch (err) {
      C.say(status, "Could not load the dashboard: " + err.message, "error");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = {};
    if (form.from.value) params.from = form.from.value;
    if (form.to.value) params.to = form.to.value;
    history.replaceState(null, "", location.pathname + C.toQuery(params));
    load();
  });

  C.start(() => {
    const q = C.queryParams();
    form.from.value = q.from || "";
    form.to.value = q.to || "";
    return load();
  });
})();
