/* Text-only node builders the chat's parts share (the page and the widget): text only ever goes
 * in with textContent, never as HTML. Loaded first; every script under static/chat/ adds its part
 * to window.smartmktChat. */
"use strict";

window.smartmktChat = window.smartmktChat || {};
window.smartmktChat.dom = (function () {
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
     as the customer's message (composer.js). */
  function quickButton(label, productTitle, payload, display) {
    const button = node("button", "quick-reply", label);
    button.type = "button";
    if (productTitle) button.setAttribute("aria-label", label + ": " + productTitle); // visible words first
    button.dataset.payload = payload;
    button.dataset.display = display;
    return button;
  }

  return { node, hidden, quickButton };
})();
