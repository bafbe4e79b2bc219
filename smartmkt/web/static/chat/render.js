/* The conversation on the page: the customer's and the bot's bubbles, suggested answers, product
 * cards (cards.js), notices and the typing indicator. What is rendered as new is also kept
 * (storage.js); the kept conversation is rendered again on a reload or a customer switch.
 *
 * Another tab of the same conversation: what it kept is drawn here too (a message or a bot
 * message once, by its id). Those bot turns, and the bot's answers to what was said there, are
 * marked as seen there (data-seen), so the widget does not count them unread. */
"use strict";

window.smartmktChat.render = (function () {
  const { el } = window.smartmktChat.page;
  const { node, hidden, quickButton } = window.smartmktChat.dom;
  const { store, history, remember, onChange } = window.smartmktChat.storage;
  const { cards } = window.smartmktChat.cards;
  const TYPING_TIMEOUT_MS = 30000;

  function scrollDown() {
    el.log.scrollTop = el.log.scrollHeight;
  }

  const drawn = new Set(); // the ids of the entries and bot messages on the page
  let answeringElsewhere = false; // the last customer message was sent from another tab

  function newId() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return "c" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function customerBubble(text) {
    const item = node("div", "msg from-customer");
    item.appendChild(hidden("You said: "));
    item.appendChild(node("p", "msg-text", text));
    return item;
  }

  function botBubble(text) {
    const item = node("div", "msg from-bot");
    item.appendChild(hidden("Assistant: "));
    item.appendChild(node("p", "msg-text", text));
    return item;
  }

  function quickReplies(replies) {
    const row = node("div", "quick-row");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Suggested answers");
    replies.forEach((r) => {
      if (r && r.title) row.appendChild(quickButton(String(r.title), null, String(r.payload || r.title), String(r.title)));
    });
    return row;
  }

  /* A text that lists the same products the cards show, one "N. ..." line each, loses those
   * lines: the cards say it (and a screen reader is not read the list twice). */
  function withoutListedProducts(text, count) {
    const lines = String(text).split("\n");
    const listed = lines.filter((line) => /^\d+\.\s/.test(line));
    if (!count || listed.length !== count) return text;
    const kept = lines.filter((line) => !/^\d+\.\s/.test(line)).join("\n");
    return kept.replace(/\n{3,}/g, "\n\n").trim(); // the list's paragraph goes with it
  }

  /* Rasa's socket.io channel sends each paragraph of a reply as its own message: the paragraphs
   * of one reply (up to its buttons or cards) are one bubble again. */
  function joinParagraphs(messages) {
    const none = (list) => !Array.isArray(list) || !list.length; // Rasa sends [] on each paragraph
    const joined = [];
    messages.forEach((m) => {
      const last = joined[joined.length - 1];
      const plain = last && typeof last.text === "string" && none(last.quick_replies) && none(last.buttons) && !last.custom;
      if (plain && typeof m.text === "string") joined[joined.length - 1] = { ...m, text: last.text + "\n\n" + m.text };
      else joined.push(m);
    });
    return joined;
  }

  /* One bot turn: its messages in order ({text, quick_replies?} or {custom}); returns the texts
     shown, for reading aloud. ``elsewhere``: another tab kept it (it was shown there). */
  function renderBotTurn(messages, store_it, elsewhere) {
    messages = messages.filter((m) => !m.id || !drawn.has(m.id)); // another tab's copy came first
    if (!messages.length) return [];
    if (store_it) messages = messages.map((m) => (m.id ? m : { ...m, id: newId() })); // POST /voice's have none
    messages.forEach((m) => m.id && drawn.add(m.id));
    const first = el.log.childElementCount;
    const productCount = messages.reduce((n, m) => {
      const c = m.custom;
      return c && Array.isArray(c.products) ? Math.max(n, c.products.length) : n;
    }, 0);
    const spoken = [];
    joinParagraphs(messages).forEach((m) => {
      if (typeof m.text === "string" && m.text.trim()) {
        const text = withoutListedProducts(m.text, productCount);
        el.log.appendChild(botBubble(text));
        spoken.push(text);
      }
      const replies = m.quick_replies || m.buttons;
      if (Array.isArray(replies) && replies.length) el.log.appendChild(quickReplies(replies));
      if (m.custom && typeof m.custom === "object") {
        const section = cards(m.custom);
        if (section) el.log.appendChild(section);
      }
    });
    if (answeringElsewhere || elsewhere) Array.from(el.log.children).slice(first).forEach((n) => (n.dataset.seen = "elsewhere"));
    if (store_it) remember({ from: "bot", messages: messages });
    scrollDown();
    return spoken;
  }

  /* The customer's message; ``entry`` is the kept one when it is drawn again (a reload, another
     tab), else the message is new here and is kept. */
  function renderCustomer(text, entry) {
    el.log.appendChild(customerBubble(text));
    if (entry && entry.id) drawn.add(entry.id);
    if (!entry) {
      const id = newId();
      drawn.add(id);
      remember({ from: "customer", text: text, id: id });
      answeringElsewhere = false;
    }
    scrollDown();
  }

  function notice(text) {
    const item = node("p", "notice", text);
    el.log.appendChild(item);
    scrollDown();
  }

  function renderHistory() {
    el.log.replaceChildren();
    drawn.clear();
    answeringElsewhere = false;
    history(store.customer).forEach((entry) => {
      if (entry.from === "customer") renderCustomer(entry.text, entry);
      else if (entry.from === "bot" && Array.isArray(entry.messages)) renderBotTurn(entry.messages, false);
    });
  }

  /* Another tab kept new messages of this conversation: draw those not on the page yet. */
  function renderKeptElsewhere() {
    history(store.customer).forEach((entry) => {
      if (entry.from === "customer" && entry.id && !drawn.has(entry.id)) {
        renderCustomer(entry.text, entry);
        answeringElsewhere = true;
        typing(true);
      } else if (entry.from === "bot" && Array.isArray(entry.messages)) {
        const fresh = entry.messages.filter((m) => m.id && !drawn.has(m.id));
        if (fresh.length) {
          typing(false);
          renderBotTurn(fresh, false, true);
        }
      }
    });
  }
  onChange(renderKeptElsewhere);

  let typingTimer = null;
  function typing(on, text) {
    clearTimeout(typingTimer);
    if (on) {
      el.typing.replaceChildren(node("span", "dots"), document.createTextNode(text || "The assistant is typing…"));
      el.typing.classList.add("on");
      typingTimer = setTimeout(() => typing(false), TYPING_TIMEOUT_MS);
    } else {
      el.typing.replaceChildren();
      el.typing.classList.remove("on");
    }
  }

  return { renderBotTurn, renderCustomer, notice, renderHistory, typing };
})();
