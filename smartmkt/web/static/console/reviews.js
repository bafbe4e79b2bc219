/* The NLU reviews marketers saved (GET /console/api/nlu-reviews). */
"use strict";

(function () {
  const C = window.smartmktConsole;
  const { h } = C;
  const status = document.getElementById("status");
  const box = document.getElementById("reviews");

  function entities(list) {
    return (list || []).map((e) => e.entity + (e.role ? "#" + e.role : "") + " = " + JSON.stringify(e.value)).join("; ");
  }

  C.start(() =>
    C.api("GET", "/nlu-reviews").then((data) => {
      const items = Array.isArray(data) ? data : (data && data.items) || [];
      if (!items.length) {
        C.say(status, "No reviews yet: open a transcript and use “Review NLU” on a customer message.");
        return;
      }
      C.say(status, items.length + " review" + (items.length === 1 ? "" : "s") + ".");
      box.replaceChildren(
        h(
          "table",
          {},
          h("caption", {}, "Reviewed messages"),
          h("thead", {}, h("tr", {}, ["Message", "Intent", "Entities", "Conversation", "Reviewed by", "When"].map((x) => h("th", { scope: "col" }, x)))),
          h(
            "tbody",
            {},
            items.map((r) =>
              h(
                "tr",
                {},
                h("td", { className: "text" }, r.text || ""),
                h("td", {}, r.intent || ""),
                h("td", {}, entities(r.entities)),
                h("td", {}, r.sender_id ? h("a", { href: "/console/conversations/" + encodeURIComponent(r.sender_id) }, r.sender_id) : ""),
                h("td", {}, r.reviewed_by || ""),
                h("td", {}, C.fmtTime(r.created_at))
              )
            )
          )
        )
      );
    })
  );
})();
