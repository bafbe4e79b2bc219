/* The conversations seen in this browser, in localStorage, so a reload keeps them: the current
 * customer, the read-aloud choice, each recent customer's messages and chat session id. */
"use strict";

window.smartmktChat.storage = (function () {
  const STORE_KEY = "smartmkt.chat.v1";
  const KEEP_MESSAGES = 200; // per conversation, in localStorage
  const KEEP_CONVERSATIONS = 20; // the customers most recently picked in this browser

  function load() {
    try {
      const data = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
      return data && typeof data === "object" ? data : {};
    } catch (_err) {
      return {};
    }
  }
  const store = Object.assign({ customer: null, sound: false, conversations: {}, recent: [], sessions: {} }, load());
  if (!Array.isArray(store.recent)) store.recent = [];
  if (!store.sessions || typeof store.sessions !== "object") store.sessions = {};
  delete store.sender; // before customer tokens the sender id named the customer
  function save() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(store));
    } catch (_err) {
      /* storage full or disabled: the chat still works, it just won't survive a reload */
    }
  }
  function history(sender) {
    if (!Array.isArray(store.conversations[sender])) store.conversations[sender] = [];
    return store.conversations[sender];
  }
  function remember(entry) {
    const list = history(store.customer);
    list.push(entry);
    if (list.length > KEEP_MESSAGES) list.splice(0, list.length - KEEP_MESSAGES);
    save();
  }
  /* ``ref`` becomes the current customer; only the most recent customers' conversations and
     session ids are kept. */
  function makeCurrent(ref) {
    store.customer = ref;
    store.recent = [...store.recent.filter((s) => s !== ref), ref].slice(-KEEP_CONVERSATIONS);
    Object.keys(store.conversations).forEach((s) => {
      if (!store.recent.includes(s)) delete store.conversations[s];
    });
    Object.keys(store.sessions).forEach((s) => {
      if (!store.recent.includes(s)) delete store.sessions[s];
    });
    save();
  }

  return { store, save, history, remember, makeCurrent };
})();
