/* smartmkt customer web chat: Rasa's socket.io channel (bot/credentials.yml) for typed text and
 * button payloads, POST /voice for push-to-talk. Every text from the customer or the bot is put
 * on the page with textContent, never parsed as HTML. No inline handlers: the scripts wire all.
 *
 * The page's scripts, one concern each, loaded in this order by pages/chat.html (plain scripts
 * with defer, as the console's are; each adds its part to window.smartmktChat):
 *   chat/page.js      the page's elements, its <meta> settings, text-only node builders
 *   chat/storage.js   the conversations kept in localStorage, so a reload keeps them
 *   chat/identity.js  customer token and chat session (smartmkt/security/identity.py)
 *   chat/offers.js    an offer's price line and badge on a product card
 *   chat/cards.js     product cards and their buy / more like this / no thanks buttons
 *   chat/render.js    the conversation: bubbles, suggested answers, notices, typing indicator
 *   chat/sound.js     reading replies aloud
 *   chat/socket.js    Rasa's socket.io channel: session, messages out, the bot's turns in
 *   chat/voice.js     push to talk (POST /voice)
 *   chat/customer.js  the demo's customer picker, switching customers
 *   chat.js           this file: the message box, the suggested-answer buttons, the start */
"use strict";

(function () {
  const { el, tokenUrl } = window.smartmktChat.page;
  const { store } = window.smartmktChat.storage;
  const { sendPayload } = window.smartmktChat.socket;
  const { switchTo } = window.smartmktChat.customer;

  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = el.input.value.trim();
    if (!text) {
      el.input.focus();
      return;
    }
    if (sendPayload(text, text)) el.input.value = "";
    el.input.focus();
  });

  el.log.addEventListener("click", (event) => {
    const button = event.target.closest("button.quick-reply");
    if (!button || !el.log.contains(button)) return;
    sendPayload(button.dataset.payload, button.dataset.display);
    el.input.focus();
  });

  if (tokenUrl) {
    el.customerForm.hidden = true; // the shop says who is chatting
    switchTo(null);
  } else {
    switchTo(store.customer && typeof store.customer === "string" ? store.customer : null);
  }
})();
