/* smartmkt customer web chat: Rasa's socket.io channel (bot/credentials.yml) for typed text and
 * button payloads, POST /voice for push-to-talk. Every text from the customer or the bot is put
 * on the page with textContent, never parsed as HTML. No inline handlers: the scripts wire all.
 *
 * The page's scripts, one concern each, loaded in this order by pages/chat.html (plain scripts
 * with defer, as the console's are; each adds its part to window.smartmktChat):
 *   chat/dom.js       text-only node builders
 *   chat/page.js      the page's elements, its <meta> settings
 *   chat/storage.js   the conversations kept in localStorage, so a reload keeps them
 *   chat/identity.js  customer token and chat session (smartmkt/security/identity.py)
 *   chat/offers.js    an offer's price line and badge on a product card
 *   chat/cards.js     product cards and their buy / more like this / no thanks buttons
 *   chat/render.js    the conversation: bubbles, suggested answers, notices, typing indicator
 *   chat/sound.js     reading replies aloud
 *   chat/socket.js    Rasa's socket.io channel: session, messages out, the bot's turns in
 *   chat/voice.js     push to talk (POST /voice)
 *   chat/composer.js  the message box and the conversation's buttons
 *   chat/customer.js  the demo's customer picker, switching customers
 *   chat.js           this file: the start
 * The widget (GET /widget.js, smartmkt/web/routers/widget.py) bundles the same parts with its own
 * shell instead of page.js, customer.js and this file. */
"use strict";

(function () {
  const { el, tokenUrl } = window.smartmktChat.page;
  const { store } = window.smartmktChat.storage;
  const { switchTo } = window.smartmktChat.customer;

  window.smartmktChat.composer.wire();
  if (tokenUrl) {
    el.customerForm.hidden = true; // the shop says who is chatting
    switchTo(null);
  } else {
    switchTo(store.customer && typeof store.customer === "string" ? store.customer : null);
  }
})();
