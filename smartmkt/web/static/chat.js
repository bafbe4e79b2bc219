/* smartmkt customer web chat: Rasa's socket.io channel (bot/credentials.yml) for typed text and
 * button payloads, POST /voice for push-to-talk. Every text from the customer or the bot is put
 * on the page with textContent, never parsed as HTML. No inline handlers: this file wires all.
 *
 * Identity (smartmkt/security/identity.py): the shop's site issues a signed, expiring customer
 * token; the page trades it once for a random session id bound to that customer (POST
 * /chat/session) and sends the token with every message and with the socket's session request.
 * Rasa checks both before it reads the conversation. In this demo the picker plays the shop's
 * site: POST /chat/demo-token issues the token (only when the app runs with
 * SMARTMKT_DEMO_TOKENS=true). The token is kept in memory only; the session id per customer in
 * localStorage, so a reload continues the same conversation. */
"use strict";

(function () {
  const STORE_KEY = "smartmkt.chat.v1";
  const KEEP_MESSAGES = 200; // per conversation, in localStorage
  const KEEP_CONVERSATIONS = 20; // the customers most recently picked in this browser
  const SETTLE_MS = 150; // Rasa sends a reply's text and its cards as separate events
  const TYPING_TIMEOUT_MS = 30000;
  const DEMO_CUSTOMERS = 943;

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

  // --- storage: the conversations seen in this browser, so a reload keeps them ---------------
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

  // --- identity -----------------------------------------------------------------------------
  const REFRESH_MS = 60000; // a token this close to its expiry is renewed before a message
  let auth = null; // {customer, token, expiresAt, session}: this customer's token, in memory only
  function isDemoId(customer) {
    return /^\d+$/.test(customer) && Number(customer) >= 1 && Number(customer) <= DEMO_CUSTOMERS;
  }
  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data && data.error ? String(data.error) : "HTTP " + response.status);
    return data;
  }
  /* A customer token from the shop's site (its endpoint knows the shopper from its own login
     cookie), or the demo's stand-in for ``customer`` (null: a new customer). */
  async function customerToken(customer) {
    const issued = tokenUrl ? await postJson(tokenUrl, {}) : await postJson("/chat/demo-token", { customer: customer });
    return { customer: String(issued.customer_ref), token: String(issued.token), expiresAt: Date.parse(issued.expires_at) };
  }
  /* The token plus this customer's session id: the one kept in this browser, or a new one. */
  async function identify(customer) {
    const issued = await customerToken(customer);
    let session = store.sessions[issued.customer];
    if (typeof session !== "string" || !session) {
      session = String((await postJson("/chat/session", { token: issued.token })).session_id);
      store.sessions[issued.customer] = session;
    }
    return Object.assign(issued, { session: session });
  }
  async function freshAuth() {
    if (auth && auth.expiresAt - Date.now() < REFRESH_MS) {
      const renewed = await customerToken(auth.customer);
      auth.token = renewed.token;
      auth.expiresAt = renewed.expiresAt;
    }
    return auth;
  }
  function describeCustomer(customer) {
    return isDemoId(customer) ? "You are chatting as demo customer " + customer + "." : "You are chatting as a new customer.";
  }

  // --- rendering ----------------------------------------------------------------------------
  function node(tag, className, text) {
    const n = document.createElement(tag);
    if (className) n.className = className;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function hidden(text) {
    return node("span", "visually-hidden", text);
  }

  function money(amount, currency) {
    const value = Number(amount);
    if (!Number.isFinite(value)) return "";
    try {
      return new Intl.NumberFormat("en-US", { style: "currency", currency: currency || "USD" }).format(value);
    } catch (_err) {
      return value.toFixed(2) + " " + (currency || "");
    }
  }
  function day(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso || "");
    return d.toLocaleDateString("en-US", { month: "short", day: "numeric" });
  }

  function scrollDown() {
    el.log.scrollTop = el.log.scrollHeight;
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

  function quickButton(label, productTitle, payload, display) {
    const button = node("button", "quick-reply", label);
    button.type = "button";
    if (productTitle) button.setAttribute("aria-label", label + ": " + productTitle); // visible words first
    button.dataset.payload = payload;
    button.dataset.display = display;
    return button;
  }

  function shortcut(intent, entities) {
    return "/" + intent + (entities ? JSON.stringify(entities) : "");
  }

  function productCard(product, offer, index, groupId) {
    const title = String(product.title || "");
    const card = node("li", "card");
    const titleId = groupId + "-t" + index;
    card.setAttribute("aria-labelledby", titleId);
    const heading = node("h3", "card-title", title);
    heading.id = titleId;
    card.appendChild(heading);
    const details = [];
    if (product.year) details.push(String(product.year));
    if (Array.isArray(product.genres) && product.genres.length) details.push(product.genres.join(", "));
    if (details.length) card.appendChild(node("p", "card-meta", details.join(" · ")));

    const price = node("p", "card-price");
    const hasOffer = offer && Number(offer.product_id) === Number(product.id);
    if (hasOffer) {
      price.appendChild(hidden("Regular price "));
      price.appendChild(node("s", "old-price", money(product.price, product.currency)));
      price.appendChild(hidden(", your price "));
      price.appendChild(node("strong", "offer-price", " " + money(offer.offer_price, product.currency)));
    } else {
      price.appendChild(hidden("Price "));
      price.appendChild(node("strong", null, money(product.price, product.currency)));
    }
    card.appendChild(price);
    if (hasOffer) {
      card.classList.add("has-offer");
      const badge = node("p", "badge");
      badge.appendChild(node("span", "badge-off", String(offer.percent_off) + "% off"));
      badge.appendChild(node("span", "badge-until", " until " + day(offer.expires_at)));
      card.appendChild(badge);
    }

    const actions = node("div", "card-actions");
    actions.setAttribute("role", "group");
    actions.setAttribute("aria-label", "Choices for " + title);
    actions.appendChild(
      // "Buy", not "Add to cart": there is no cart, the bot orders the title at once
      quickButton("Buy", title, shortcut("purchase", { product: title }), "Buy: " + title)
    );
    actions.appendChild(
      quickButton(
        "Show more like this",
        title,
        shortcut("ask_recommendation", { product: title }),
        "Show more like " + title
      )
    );
    // names its title, so it declines that card's offer only, not every offer listed
    actions.appendChild(quickButton("No thanks", title, shortcut("deny", { product: title }), "No thanks"));
    card.appendChild(actions);
    return card;
  }

  let groupCounter = 0;
  function cards(custom) {
    if (custom.type === "order") return null; // the reply's text confirms the order
    const products = Array.isArray(custom.products) ? custom.products : custom.product ? [custom.product] : [];
    if (!products.length) return null;
    let offers = [];
    if (custom.offer) offers = [custom.offer];
    if (Array.isArray(custom.offers)) offers = custom.offers;
    const groupId = "cards-" + Date.now().toString(36) + "-" + groupCounter++;
    const section = node("section", "recs");
    section.setAttribute("aria-label", products.length === 1 ? "Product" : products.length + " products");
    const list = node("ul", "cards");
    products.forEach((product, i) => {
      const offer = offers.find((o) => o && Number(o.product_id) === Number(product.id)) || null;
      list.appendChild(productCard(product, offer, i, groupId));
    });
    section.appendChild(list);
    return section;
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
    return lines.filter((line) => !/^\d+\.\s/.test(line)).join("\n");
  }

  /* One bot turn: its messages in order ({text, quick_replies?} or {custom}). */
  function renderBotTurn(messages, store_it) {
    const productCount = messages.reduce((n, m) => {
      const c = m.custom;
      return c && Array.isArray(c.products) ? Math.max(n, c.products.length) : n;
    }, 0);
    const spoken = [];
    messages.forEach((m) => {
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
    if (store_it) remember({ from: "bot", messages: messages });
    scrollDown();
    return spoken;
  }

  function renderCustomer(text, store_it) {
    el.log.appendChild(customerBubble(text));
    if (store_it) remember({ from: "customer", text: text });
    scrollDown();
  }

  function notice(text) {
    const item = node("p", "notice", text);
    el.log.appendChild(item);
    scrollDown();
  }

  function renderHistory() {
    el.log.replaceChildren();
    history(store.customer).forEach((entry) => {
      if (entry.from === "customer") renderCustomer(entry.text, false);
      else if (entry.from === "bot" && Array.isArray(entry.messages)) renderBotTurn(entry.messages, false);
    });
  }

  // --- typing indicator and speech ------------------------------------------------------------
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

  function speak(texts) {
    if (!store.sound || !("speechSynthesis" in window) || !texts.length) return;
    texts.forEach((t) => window.speechSynthesis.speak(new SpeechSynthesisUtterance(t)));
  }

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
    pending.push(m);
    clearTimeout(settleTimer);
    settleTimer = setTimeout(flushPending, SETTLE_MS);
  }

  // --- the socket.io channel ------------------------------------------------------------------
  let socket = null;
  function connect() {
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    if (typeof window.io !== "function") {
      el.connection.textContent = "The chat library did not load; reload the page.";
      return;
    }
    el.connection.textContent = "Connecting…";
    socket = window.io(socketUrl, { path: "/socket.io", transports: ["websocket", "polling"] });
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
      document.body.dataset.connected = "true";
      if (!history(store.customer).length) sendPayload("/greet", null); // the bot says hello first
    });
    socket.on("session_refused", () => {
      document.body.dataset.connected = "false";
      el.connection.textContent = "The assistant did not accept this chat session; reload the page.";
    });
    socket.on("bot_uttered", onBotMessage);
    socket.on("disconnect", () => {
      document.body.dataset.connected = "false";
      el.connection.textContent = "Connection lost, reconnecting…";
    });
    socket.on("connect_error", () => {
      document.body.dataset.connected = "false";
      el.connection.textContent = "Can't reach the assistant right now, retrying…";
    });
  }

  /* Sends a message or a button payload; ``display`` is what the customer sees as theirs. */
  function sendPayload(message, display) {
    if (!socket || !socket.connected || !auth) {
      notice("Not connected yet; your message was not sent. Please try again in a moment.");
      return false;
    }
    if (display) renderCustomer(display, true);
    typing(true);
    const target = socket;
    freshAuth()
      .then((current) =>
        target.emit("user_uttered", {
          message: message,
          session_id: current.session,
          metadata: { customer_token: current.token },
        })
      )
      .catch(() => {
        typing(false);
        notice("Your sign-in could not be renewed; your message was not sent. Please reload the page.");
      });
    return true;
  }

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

  // --- customer picker ------------------------------------------------------------------------
  let switching = 0;
  async function switchTo(customer) {
    const attempt = ++switching;
    el.customerId.value = customer && isDemoId(customer) ? customer : ""; // now, not after the await
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
      socket = null;
    }
    document.body.dataset.connected = "false";
    el.connection.textContent = "Signing in…";
    let identity;
    try {
      identity = await identify(customer);
    } catch (err) {
      if (attempt === switching) el.connection.textContent = "Can't sign in to the assistant (" + err.message + ").";
      return;
    }
    if (attempt !== switching) return; // the customer picked someone else meanwhile
    auth = identity;
    const ref = identity.customer;
    store.customer = ref;
    store.recent = [...store.recent.filter((s) => s !== ref), ref].slice(-KEEP_CONVERSATIONS);
    Object.keys(store.conversations).forEach((s) => {
      if (!store.recent.includes(s)) delete store.conversations[s];
    });
    Object.keys(store.sessions).forEach((s) => {
      if (!store.recent.includes(s)) delete store.sessions[s];
    });
    save();
    el.customerNow.textContent = describeCustomer(ref);
    document.body.dataset.customer = ref;
    document.body.dataset.sender = identity.session;
    typing(false);
    pending = [];
    renderHistory();
    connect();
  }
  el.customerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = el.customerId.value.trim();
    if (!isDemoId(value)) {
      el.customerNow.textContent = "Pick a customer number from 1 to 943, or New customer.";
      el.customerId.focus();
      return;
    }
    switchTo(String(Number(value)));
    el.input.focus();
  });
  el.customerNew.addEventListener("click", () => {
    switchTo(null);
    el.input.focus();
  });

  // --- sound ----------------------------------------------------------------------------------
  el.sound.checked = Boolean(store.sound);
  if (!("speechSynthesis" in window)) {
    el.sound.disabled = true;
    el.sound.parentElement.title = "This browser cannot read aloud.";
  }
  el.sound.addEventListener("change", () => {
    store.sound = el.sound.checked;
    save();
    if (!store.sound && "speechSynthesis" in window) window.speechSynthesis.cancel();
  });

  // --- push to talk: MediaRecorder -> POST /voice (same sender) -------------------------------
  const HOLD_MS = 400; // held longer than this: release sends; a short press toggles instead
  let recorder = null;
  let chunks = [];
  let pressedAt = 0;
  const canRecord = Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  if (!canRecord) {
    el.mic.disabled = true;
    el.micLabel.textContent = "Voice not available";
  }

  function micState(recording) {
    el.mic.setAttribute("aria-pressed", recording ? "true" : "false");
    el.mic.classList.toggle("recording", recording);
    el.micLabel.textContent = recording ? "Recording… release or press to send" : "Hold to talk";
  }

  let starting = false;
  let stopWhenStarted = false; // released before the microphone was granted
  async function startRecording() {
    if (recorder || starting) return;
    starting = true;
    stopWhenStarted = false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (_err) {
      notice("The microphone is not available (permission denied or no device). You can type instead.");
      return;
    } finally {
      starting = false;
    }
    chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => {
      if (e.data && e.data.size) chunks.push(e.data);
    });
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((t) => t.stop());
      const type = recorder.mimeType || "audio/webm";
      recorder = null;
      micState(false);
      sendVoice(new Blob(chunks, { type: type }));
    });
    recorder.start();
    micState(true);
    if (stopWhenStarted) stopRecording();
  }

  function stopRecording() {
    if (starting) stopWhenStarted = true;
    else if (recorder && recorder.state === "recording") recorder.stop();
  }

  async function sendVoice(blob) {
    if (!blob.size) {
      notice("Nothing was recorded. Hold the button while you speak.");
      return;
    }
    const form = new FormData();
    const ext = blob.type.includes("ogg") ? "ogg" : blob.type.includes("mp4") ? "m4a" : "webm";
    form.append("audio", blob, "speech." + ext);
    typing(true, "Listening to your message…");
    let body = null;
    let status = 0;
    try {
      const current = await freshAuth();
      form.append("sender", current.session);
      form.append("customer_token", current.token);
      const response = await fetch("/voice", { method: "POST", body: form, credentials: "same-origin" });
      status = response.status;
      body = await response.json();
    } catch (_err) {
      body = null;
    }
    typing(false);
    if (!body || status !== 200) {
      const reason = body && body.error ? " (" + body.error + ")" : "";
      notice("Sorry, the voice message didn't go through" + reason + ". You can type instead.");
      return;
    }
    if (body.transcript) renderCustomer(String(body.transcript), true);
    const messages = (Array.isArray(body.responses) ? body.responses : [])
      .map((r) => {
        const m = {};
        if (r && typeof r.text === "string") m.text = r.text;
        if (r && Array.isArray(r.buttons)) m.buttons = r.buttons;
        if (r && r.custom && typeof r.custom === "object") m.custom = r.custom;
        return m;
      })
      .filter((m) => Object.keys(m).length);
    if (messages.length) speak(renderBotTurn(messages, true));
  }

  function press() {
    if (el.mic.disabled) return;
    if (recorder || starting) {
      stopRecording(); // second press in toggle mode
      pressedAt = 0;
      return;
    }
    pressedAt = Date.now();
    startRecording();
  }
  function release() {
    if (pressedAt && Date.now() - pressedAt > HOLD_MS) stopRecording(); // push-to-talk: held, let go
    pressedAt = 0;
  }
  let gesture = false; // a pointer or key press already handled the click that follows it
  el.mic.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    el.mic.setPointerCapture(e.pointerId); // the release counts even off the button
    gesture = true;
    press();
  });
  el.mic.addEventListener("pointerup", release);
  el.mic.addEventListener("pointercancel", release);
  el.mic.addEventListener("keydown", (e) => {
    if (e.key !== " " && e.key !== "Enter") return;
    e.preventDefault(); // no click: the key itself talks
    if (!e.repeat) press();
  });
  el.mic.addEventListener("keyup", (e) => {
    if (e.key !== " " && e.key !== "Enter") return;
    e.preventDefault();
    release();
  });
  el.mic.addEventListener("click", (e) => {
    e.preventDefault();
    if (!gesture) press(); // a screen reader's "activate" is a bare click: it toggles
    gesture = false;
  });

  // --- start ----------------------------------------------------------------------------------
  if (tokenUrl) {
    el.customerForm.hidden = true; // the shop says who is chatting
    switchTo(null);
  } else {
    switchTo(store.customer && typeof store.customer === "string" ? store.customer : null);
  }
})();
