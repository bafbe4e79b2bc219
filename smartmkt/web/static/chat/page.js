/* The chat page itself: its elements, the two settings the server writes into <meta> tags, and
 * the node builders the other parts use. Text only ever goes in with textContent, never as HTML.
 * Loaded first: every script under static/chat/ adds its part to window.smartmktChat. */
"use strict";

window.smartmktChat = window.smartmktChat || {};
window.smartmktChat.page = (function () {
  const $ = (id) => document.getElementById(id);
  const el = {
    log: $("log"),
    typing: $("typing"),
    connection: $("connection"),
    composer: $("composer"),
    input: $("chat-input"),
    send: $("send"),
    mic: $("mic"),
    micLabel: document.querySelector("#mic .mic-label"),
    sound: $("sound"),
    customerForm: $("customer-form"),
    customerId: $("customer-id"),
    customerNew: $("customer-new"),
    customerNow: $("customer-now"),
  };
  const socketUrl = document.querySelector('meta[name="smartmkt-socket-url"]').content;
  // The shop's own token endpoint (SMARTMKT_CHAT_TOKEN_URL): the shopper it names is the customer
  // and there is no picker. Empty: the demo, where the picker asks POST /chat/demo-token.
  const tokenUrl = document.querySelector('meta[name="smartmkt-token-url"]').content;

  function node(tag, className, text) {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function hidden(text) {
    return node("span", "visually-hidden", text);
  }

  /* A button the log's click handler sends: its payload goes to the bot, ``display`` is shown
     as the customer's message (chat.js). */
  function quickButton(label, productTitle, payload, display) {
    const button = node("button", "quick-reply", label);
    button.type = "button";
    if (productTitle) button.setAttribute("aria-label", label + ": " + productTitle); // visible words first
    button.dataset.payload = payload;
    button.dataset.display = display;
    return button;
  }

  return { el, socketUrl, tokenUrl, node, hidden, quickButton };
})();
