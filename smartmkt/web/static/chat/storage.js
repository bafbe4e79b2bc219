/* The conversations seen in this browser, in localStorage, so a reload keeps them: the current
 * customer, the read-aloud choice, each recent customer's messages and chat session id.
 *
 * Several tabs can show one conversation (the widget on every page of a shop). A tab keeps its
 * copy current: another tab's write (the browser's "storage" event) is read again at once and
 * told to the listeners (render.js draws what it has not drawn yet), and each new entry is
 * added to what is stored now, not to this tab's older copy. The bot's messages have ids (the
 * socket sends each to every tab of the session): a message already kept is not kept twice. */
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
  /* What another tab wrote becomes this tab's copy; which customer this tab shows stays. */
  function refresh() {
    const fresh = load();
    store.conversations = fresh.conversations && typeof fresh.conversations === "object" ? fresh.conversations : {};
    store.sessions = fresh.sessions && typeof fresh.sessions === "object" ? fresh.sessions : {};
    store.recent = Array.isArray(fresh.recent) ? fresh.recent : [];
    store.sound = Boolean(fresh.sound);
  }
  const listeners = [];
  /* ``listener()`` runs after another tab has changed the kept conversations. */
  function onChange(listener) {
    listeners.push(listener);
  }
  window.addEventListener("storage", (event) => {
    if (event.key !== STORE_KEY && event.key !== null) return; // null: the storage was cleared
    refresh();
    listeners.forEach((listener) => listener());
  });
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
  /* The ids of the bot's messages kept in a conversation. */
  function keptIds(list) {
    const ids = new Set();
    list.forEach((e) => (e.messages || []).forEach((m) => m && m.id && ids.add(m.id)));
    return ids;
  }
  function remember(entry) {
    refresh(); // another tab may have written since this tab last read
    const list = history(store.customer);
    if (entry.from === "bot") {
      const kept = keptIds(list);
      const messages = entry.messages.filter((m) => !m.id || !kept.has(m.id));
      if (!messages.length) return; // another tab kept this turn already
      entry = { ...entry, messages: messages };
    }
    list.push(entry);
    if (list.length > KEEP_MESSAGES) list.splice(0, list.length - KEEP_MESSAGES);
    save();
  }
  /* ``ref`` becomes the current customer; only the most recent customers' conversations and
     session ids are kept. */
  function makeCurrent(ref) {
    const sessions = { ...store.sessions }; // this tab's new session ids, kept over the refresh
    refresh();
    Object.assign(store.sessions, sessions);
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

  return { store, save, history, remember, makeCurrent, onChange };
})();
