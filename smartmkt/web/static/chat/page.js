/* The chat page itself: its elements and the two settings the server writes into <meta> tags.
 * The widget (static/widget/shell.js) gives the same parts its own elements instead. */
"use strict";

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

  // the app's own page: its requests go to its own origin, its state shows on <body>
  const appUrl = "";
  const root = document.body;

  return { el, socketUrl, tokenUrl, appUrl, root };
})();
