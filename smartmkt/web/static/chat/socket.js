/* Rasa's socket.io channel (bot/credentials.yml): the session request with the customer's token,
 * typed text and button payloads out, the bot's messages in. Rasa sends a reply's text and its
 * cards as separate events: a short settle window groups them into one turn. */
"use strict";

window.smartmktChat.socket = (function () {
  const { el, socketUrl, root } = window.smartmktChat.page;
  const { store, history } = window.smartmktChat.storage;
  const { signedIn, freshAuth } = window.smartmktChat.identity;
  const { renderBotTurn, renderCustomer, notice, typing } = window.smartmktChat.render;
  const { speak } = window.smartmktChat.sound;
  const SETTLE_MS = 150;

  // --- bot messages: a short settle window groups a turn's text and cards ---------------------
  let pending = [];
  let settleTimer = null;
  function flushPending() {
    const messages = pending;
    pending = [];
    if (!messages.length) return;
    typing(false);
    speak(renderBotTurn(messages, true));
  }
  function onBotMessage(message) {
    if (!message || typeof message !== "object") return;
    const m = {};
    if (typeof message.text === "string") m.text = message.text;
    if (Array.isArray(message.quick_replies)) m.quick_replies = message.quick_replies;
    if (Array.isArray(message.buttons)) m.buttons = message.buttons;
    if (message.custom && typeof message.custom === "object") m.custom = message.custom;
    if (!Object.keys(m).length) return;
    if (typeof message.id === "string") m.id = message.id; // one message, whichever tab it reaches
    pending.push(m);
    clearTimeout(settleTimer);
    settleTimer = setTimeout(flushPending, SETTLE_MS);
  }
  /* Forgets the bot messages not yet shown (a customer switch). */
  function dropPending() {
    pending = [];
  }

  // --- the socket.io channel ------------------------------------------------------------------
  let socket = null;
  function connect() {
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    const io = window.smartmktChat.io || window.io; // the widget keeps its own (shell.js)
    if (typeof io !== "function") {
      el.connection.textContent = "The chat library did not load; reload the page.";
      return;
    }
    el.connection.textContent = "Connecting…";
    socket = io(socketUrl, { path: "/socket.io", transports: ["websocket", "polling"] });
    socket.on("connect", async () => {
      const current = await freshAuth().catch(() => null);
      if (!current) {
        el.connection.textContent = "Can't sign you in to the assistant right now; reload to retry.";
        return;
      }
      socket.emit("session_request", { session_id: current.session, customer_token: current.token });
    });
    socket.on("session_confirm", () => {
      el.connection.textContent = "";
      root.dataset.connected = "true";
      if (!history(store.customer).length) sendPayload("/greet", null); // the bot says hello first
    });
    socket.on("session_refused", () => {
      root.dataset.connected = "false";
      el.connection.textContent = "The assistant did not accept this chat session; reload the page.";
    });
    socket.on("bot_uttered", onBotMessage);
    socket.on("disconnect", () => {
      root.dataset.connected = "false";
      el.connection.textContent = "Connection lost, reconnecting…";
    });
    socket.on("connect_error", () => {
      root.dataset.connected = "false";
      el.connection.textContent = "Can't reach the assistant right now, retrying…";
    });
  }
  /* Closes the channel, if open (a customer switch; connect opens it again). */
  function hangUp() {
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
      socket = null;
    }
  }

  /* Sends a message or a button payload; ``display`` is what the customer sees as theirs. */
  function sendPayload(message, display) {
    if (!socket || !socket.connected || !signedIn()) {
      notice("Not connected yet; your message was not sent. Please try again in a moment.");
      return false;
    }
    if (display) renderCustomer(display);
    typing(true);
    const target = socket;
    freshAuth()
      .then((current) =>
        target.emit("user_uttered", {
          message: message,
          session_id: current.session,
          // this page renders smartmkt's cards: Rasa sends them, not its standard carousel
          metadata: { customer_token: current.token, capabilities: ["smartmkt-cards"] },
        })
      )
      .catch(() => {
        typing(false);
        notice("Your sign-in could not be renewed; your message was not sent. Please reload the page.");
      });
    return true;
  }

  return { connect, hangUp, dropPending, sendPayload };
})();
