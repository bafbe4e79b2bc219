/* The shop page: codes the shop's checkout redeemed, the webhook endpoints and every delivery
 * (GET /console/api/shop). */
"use strict";

(function () {
  const C = window.smartmktConsole;
  const { h } = C;
  const status = document.getElementById("status");

  function table(boxId, caption, columns, rows, empty) {
    const box = document.getElementById(boxId);
    if (!rows.length) {
      box.replaceChildren(h("p", {}, empty));
      return;
    }
    box.replaceChildren(
      h(
        "table",
        {},
        h("caption", {}, caption),
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))
      )
    );
  }

  function money(cents, currency) {
    return (currency === "USD" ? "$" : currency + " ") + (cents / 100).toFixed(2);
  }

  function outcome(d) {
    if (d.state === "delivered") return "delivered " + C.fmtTime(d.delivered_at);
    if (d.state === "waiting") return "next try " + C.fmtTime(d.next_attempt_at);
    return "given up";
  }

  C.start(() =>
    C.api("GET", "/shop").then((data) => {
      const redeemed = data.redemptions || [];
      const endpoints = data.endpoints || [];
      const deliveries = data.deliveries || [];
      C.say(status, redeemed.length + " redeemed code(s), " + deliveries.length + " recent webhook deliveries.");
      table(
        "redemptions",
        "Codes redeemed at the shop's checkout, newest first",
        ["Code", "Customer", "Product", "Discount", "Paid", "Order", "Redeemed"],
        redeemed.map((r) => [r.code, r.customer_id, r.product_title, r.percent_off + "%", money(r.offer_price_cents, r.currency), r.redeemed_order_id || "", C.fmtTime(r.redeemed_at)]),
        "No code redeemed yet."
      );
      table(
        "endpoints",
        "The shop's endpoints",
        ["Id", "URL", "Events", "Delivered", "Waiting", "Given up", "Disabled"],
        endpoints.map((e) => [String(e.id), e.url, e.events.join(" "), String(e.delivered), String(e.waiting), String(e.given_up), e.disabled ? "yes" : "no"]),
        "No endpoint: smartmkt webhook add URL adds one."
      );
      table(
        "deliveries",
        "Webhook deliveries, newest first",
        ["Id", "Event", "Endpoint", "Created", "Attempts", "Last answer", "Outcome"],
        deliveries.map((d) => [String(d.id), d.event, String(d.endpoint_id), C.fmtTime(d.created_at), String(d.attempts), (d.last_status ? String(d.last_status) : "") + (d.last_error ? " " + d.last_error : ""), outcome(d)]),
        "No delivery yet."
      );
    })
  );
})();
