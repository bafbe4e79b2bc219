/* The widget's start (the end of GET /widget.js): who is chatting, the launcher and the panel.
 *
 * - Identity: with data-token-url, the shop's endpoint issues the shopper's signed token and the
 *   app binds a chat session to it (identity.js); without, the shopper is a guest with a random
 *   session id of this browser. Either way the session id is kept in localStorage (storage.js),
 *   so every page and tab of the shop continues the same conversation; what one tab says and
 *   hears is drawn in the others at once (storage.js, render.js). The socket opens when
 *   the panel is first opened (or at once when a conversation is going on), so a page view alone
 *   starts no conversation.
 * - The launcher opens and closes the panel (Escape closes it too, and focus goes back to the
 *   launcher); whether it is open is kept per tab (sessionStorage). While it is closed, the bot's
 *   new turns count on the launcher's badge ("2 unread"), except those answering what the
 *   shopper said in another tab (seen there).
 * - Keyboard: Tab and Shift+Tab stay inside the open panel (a focus trap), the log is a polite
 *   live region, so a screen reader reads each new turn. */
"use strict";

(function () {
  const page = window.smartmktChat.page;
  const { el, root } = page;
  const storage = window.smartmktChat.storage;
  const identity = window.smartmktChat.identity;
  const socket = window.smartmktChat.socket;
  const render = window.smartmktChat.render;
  const OPEN_KEY = "smartmkt.widget.open";
  const GUEST = "guest";

  // --- who is chatting --------------------------------------------------------------------------
  function guestSession() {
    let session = storage.store.sessions[GUEST];
    if (typeof session !== "string" || !/^w\.[A-Za-z0-9_-]{22}$/.test(session)) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      session = "w." + btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").slice(0, 22);
      storage.store.sessions[GUEST] = session;
    }
    return { customer: GUEST, token: null, expiresAt: Infinity, session: session };
  }
  async function signIn() {
    el.connection.textContent = "Connecting…";
    let issued;
    try {
      issued = page.tokenUrl ? await identity.identify(null) : guestSession();
    } catch (err) {
      el.connection.textContent = "Can't sign you in to the assistant (" + err.message + ").";
      return;
    }
    identity.signIn(issued);
    storage.makeCurrent(issued.customer);
    root.dataset.sender = issued.session;
    render.renderHistory();
    setTimeout(() => (counting = true), 0); // after the observer has seen the history drawn
    signedIn = true;
    // A conversation going on (another page or tab): its socket now, so replies arrive here too.
    // A new visitor: only once the panel is opened, so a page view writes no conversation.
    if (storage.history(storage.store.customer).length || isOpen()) connect();
  }
  let signedIn = false;
  let connected = false;
  function connect() {
    if (connected || !signedIn) return;
    connected = true;
    if (!storage.history(storage.store.customer).length && page.greeting) {
      render.renderBotTurn([{ text: page.greeting }], true); // the shop's own first words, not /greet
    }
    socket.connect();
  }

  // --- the panel ----------------------------------------------------------------------------------
  let unread = 0;
  let counting = false; // the history drawn at the start is not unread
  function showUnread() {
    el.unread.hidden = unread === 0;
    el.unread.textContent = unread ? String(unread) : "";
    const label = unread ? "Chat with us, " + unread + " unread" : "Chat with us";
    el.launcher.setAttribute("aria-label", label);
  }
  function isOpen() {
    return !el.panel.hidden;
  }
  function setOpen(open, focus) {
    el.panel.hidden = !open;
    el.launcher.setAttribute("aria-expanded", open ? "true" : "false");
    root.dataset.open = open ? "true" : "false";
    try {
      sessionStorage.setItem(OPEN_KEY, open ? "1" : "0");
    } catch (_err) {
      /* storage disabled: the panel just starts closed on the next page */
    }
    if (open) {
      connect();
      unread = 0;
      showUnread();
      if (focus) el.input.focus();
      el.log.scrollTop = el.log.scrollHeight;
    } else if (focus) {
      el.launcher.focus();
    }
  }
  el.launcher.addEventListener("click", () => setOpen(!isOpen(), true));
  el.close.addEventListener("click", () => setOpen(false, true));
  el.panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      setOpen(false, true);
      return;
    }
    if (event.key !== "Tab") return;
    const focusable = Array.from(el.panel.querySelectorAll("button, input, [tabindex='0']")).filter(
      (n) => !n.disabled && !n.hidden && n.getClientRects().length
    );
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    const active = root.shadowRoot.activeElement;
    if (event.shiftKey && active === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && active === last) {
      event.preventDefault();
      first.focus();
    }
  });
  // a bot turn while the panel is closed: one more unread
  new MutationObserver((records) => {
    if (isOpen()) return;
    const turns = records.reduce(
      (n, r) =>
        n +
        Array.from(r.addedNodes).filter((x) => x.classList && x.classList.contains("from-bot") && !x.dataset.seen).length,
      0
    );
    if (turns && counting) {
      unread += turns;
      showUnread();
    }
  }).observe(el.log, { childList: true });

  let startOpen = page.startOpen;
  try {
    startOpen = sessionStorage.getItem(OPEN_KEY) === "1" || (sessionStorage.getItem(OPEN_KEY) === null && startOpen);
  } catch (_err) {
    /* storage disabled */
  }
  showUnread();
  window.smartmktChat.composer.wire();
  // The panel as it was left, at once: a click on the launcher while the sign-in is still on its
  // way is not undone when it finishes (the socket opens once signed in, signIn connects).
  setOpen(startOpen, false);
  signIn();
})();
