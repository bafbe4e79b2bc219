/* One conversation: every turn with what the NLU read (intent, confidence, entities), what the bot
 * did (actions, recommendations, the offer and what became of it), and on customer turns a form
 * to mark the correct intent and entities (POST /console/api/nlu-reviews). */
"use strict";

(function () {
  const C = window.smartmktConsole;
  const { h } = C;
  const senderId = decodeURIComponent(location.pathname.slice("/console/conversations/".length));
  const list = document.getElementById("turns");
  const status = document.getElementById("status");
  const INTENTS = C.metaList("smartmkt-intents").filter((i) => i !== "nlu_fallback"); // not trainable
  const ENTITIES = C.metaList("smartmkt-entities");
  let reviewCount = 0;

  function facts(pairs) {
    const dl = h("dl", { className: "facts" });
    pairs.forEach(([label, value]) => {
      if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return;
      dl.appendChild(h("dt", {}, label));
      dl.appendChild(h("dd", {}, value));
    });
    return dl.childNodes.length ? dl : null;
  }

  function entityText(e) {
    return e.entity + (e.role ? "#" + e.role : "") + " = " + JSON.stringify(e.value);
  }

  function offerText(o) {
    const parts = [(o.title || "product " + o.product_id) + ": " + o.percent_off + "% off"];
    if (o.offer_price !== undefined && o.offer_price !== null) parts.push(C.fmtMoney(o.offer_price));
    if (o.expires_at) parts.push("until " + C.fmtTime(o.expires_at));
    return h("span", {}, parts.join(", ") + " ", h("span", { className: "tag offer" }, o.status || "status unknown"));
  }

  function offersOf(turn) {
    if (Array.isArray(turn.offers) && turn.offers.length) return turn.offers.filter((o) => o && typeof o === "object");
    return turn.offer ? [turn.offer] : [];
  }

  // --- the NLU review form ----------------------------------------------------------------
  function select(id, options, value, label) {
    const s = h("select", { id: id, "aria-label": label || null });
    options.forEach((o) => s.appendChild(h("option", { value: o, selected: o === value ? true : null }, o || "(choose)")));
    return s;
  }

  function entityRow(formId, index, entity) {
    const base = formId + "-e" + index;
    const kind = entity ? entity.entity + (entity.role ? "#" + entity.role : "") : ENTITIES[0];
    const remove = h("button", { type: "button", className: "secondary remove-entity" }, "Remove", h("span", { className: "visually-hidden" }, " entity " + (index + 1)));
    const row = h(
      "fieldset",
      { className: "entity-row" },
      h("legend", {}, "Entity " + (index + 1)),
      h("div", { className: "field" }, h("label", { for: base + "-type" }, "Type"), select(base + "-type", ENTITIES, kind)),
      h("div", { className: "field" }, h("label", { for: base + "-value" }, "Words in the message"), h("input", { id: base + "-value", type: "text", value: entity ? String(entity.value) : "" })),
      h("div", { className: "field" }, remove)
    );
    remove.addEventListener("click", () => {
      const fs = row.parentElement;
      row.remove();
      const add = fs && fs.querySelector(".add-entity");
      if (add) add.focus();
    });
    return row;
  }

  function reviewForm(turn) {
    const formId = "review-" + reviewCount++;
    const form = h("form", { className: "review-form", id: formId });
    const predicted = INTENTS.includes(turn.intent) ? turn.intent : "";
    const intent = select(formId + "-intent", predicted ? INTENTS : ["", ...INTENTS], predicted);
    const entities = h("div", { className: "entities" });
    (turn.entities || []).forEach((e, i) => entities.appendChild(entityRow(formId, i, e)));
    let added = (turn.entities || []).length;
    const add = h("button", { type: "button", className: "secondary add-entity" }, "Add an entity");
    add.addEventListener("click", () => {
      const row = entityRow(formId, added++, null);
      entities.appendChild(row);
      row.querySelector("input").focus();
    });
    const result = h("p", { className: "status", role: "status" });
    form.append(
      h("div", { className: "field" }, h("label", { for: formId + "-intent" }, "Correct intent"), intent),
      h("fieldset", {}, h("legend", {}, "Correct entities"), entities, add),
      h("div", {}, h("button", { type: "submit" }, "Save review")),
      result
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = String(turn.text || "");
      const lower = text.toLowerCase();
      if (!intent.value) {
        C.say(result, "Choose the correct intent.", "error");
        intent.focus();
        return;
      }
      const marked = [];
      for (const row of entities.querySelectorAll(".entity-row")) {
        const [type, role] = row.querySelector("select").value.split("#");
        const value = row.querySelector("input").value.trim();
        if (!value) continue;
        const start = lower.indexOf(value.toLowerCase());
        if (start < 0) {
          C.say(result, '"' + value + '" is not in the message: mark words it contains.', "error");
          row.querySelector("input").focus();
          return;
        }
        const entity = { entity: type, value: text.slice(start, start + value.length), start: start, end: start + value.length };
        if (role) entity.role = role;
        marked.push(entity);
      }
      C.say(result, "Saving…");
      try {
        await C.api("POST", "/nlu-reviews", { event_id: turn.event_id, text: text, intent: intent.value, entities: marked });
        C.say(result, "Saved: " + intent.value + (marked.length ? ", " + marked.map(entityText).join("; ") : ", no entities") + ".", "ok");
      } catch (err) {
        C.say(result, "Not saved: " + err.message, "error");
      }
    });
    return h("details", { className: "review" }, h("summary", {}, "Review NLU"), form);
  }

  // --- turns ------------------------------------------------------------------------------
  function turnItem(turn, index) {
    const customer = turn.speaker === "customer";
    const who = customer ? "Customer" : "Bot";
    const headingId = "turn-" + index;
    const head = h(
      "div",
      { className: "turn-head" },
      h("h3", { id: headingId }, who),
      h("time", { datetime: turn.at || "" }, C.fmtTime(turn.at)),
      turn.channel === "voice" ? h("span", { className: "tag voice" }, "voice") : turn.channel ? h("span", { className: "tag" }, turn.channel) : null
    );
    const body = [head, h("p", { className: "turn-text" }, turn.text || "")];
    const lowConfidence = customer && typeof turn.confidence === "number" && turn.confidence < 0.55;
    const detail = facts([
      ["Intent", turn.intent ? h("span", {}, h("span", { className: "tag intent" + (lowConfidence ? " warn" : "") }, turn.intent), typeof turn.confidence === "number" ? " " + C.fmtPercent(turn.confidence) + " confidence" : "") : null],
      ["Entities", (turn.entities || []).length ? h("ul", {}, turn.entities.map((e) => h("li", {}, entityText(e)))) : null],
      ["Actions", (turn.actions || []).length ? h("ul", {}, turn.actions.map((a) => h("li", {}, h("code", {}, a)))) : null],
      ["Recommended", (turn.recommendations || []).length ? h("ul", {}, turn.recommendations.map((r) => h("li", {}, (r.title || "product " + r.id) + (r.price !== undefined && r.price !== null ? " · " + C.fmtMoney(r.price) : "")))) : null],
      ["Offer", offersOf(turn).length ? h("ul", {}, offersOf(turn).map((o) => h("li", {}, offerText(o)))) : null],
    ]);
    if (detail) body.push(detail);
    if (customer && turn.event_id !== undefined && turn.event_id !== null) body.push(reviewForm(turn));
    return h("li", { className: "turn " + (customer ? "customer" : "bot"), "aria-labelledby": headingId, dataset: { eventId: turn.event_id } }, body);
  }

  async function load() {
    C.say(status, "Loading…");
    try {
      const data = await C.api("GET", "/conversations/" + encodeURIComponent(senderId));
      const ref = data.customer_ref || data.sender_id;
      document.getElementById("title").textContent = "Conversation with customer " + ref;
      document.title = "Customer " + ref + " · smartmkt console";
      const turns = data.turns || [];
      const customerTurns = turns.filter((t) => t.speaker === "customer").length;
      document.getElementById("summary").textContent =
        "Sender id " + data.sender_id + " · " + turns.length + " turns (" + customerTurns + " from the customer)";
      list.replaceChildren(...turns.map(turnItem));
      C.say(status, "");
    } catch (err) {
      C.say(status, err.status === 404 ? "No conversation with sender id " + senderId + "." : "Could not load the conversation: " + err.message, "error");
    }
  }
  C.start(load);
})();
