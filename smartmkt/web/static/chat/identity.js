/* Who is chatting (smartmkt/security/identity.py): the shop's site issues a signed, expiring
 * customer token; the page trades it once for a random session id bound to that customer (POST
 * /chat/session) and sends the token with every message and with the socket's session request.
 * Rasa checks both before it reads the conversation. In this demo the picker plays the shop's
 * site: POST /chat/demo-token issues the token (only when the app runs with
 * SMARTMKT_DEMO_TOKENS=true). The token is kept in memory only; the session id per customer in
 * localStorage (storage.js), so a reload continues the same conversation. */
"use strict";

window.smartmktChat.identity = (function () {
  const { tokenUrl, appUrl } = window.smartmktChat.page;
  const { store, save } = window.smartmktChat.storage;
  const DEMO_CUSTOMERS = 943;
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
    const issued = tokenUrl
      ? await postJson(tokenUrl, {})
      : await postJson(appUrl + "/chat/demo-token", { customer: customer });
    return { customer: String(issued.customer_ref), token: String(issued.token), expiresAt: Date.parse(issued.expires_at) };
  }
  /* The token plus this customer's session id: the one kept in this browser, or a new one. */
  async function identify(customer) {
    const issued = await customerToken(customer);
    let session = store.sessions[issued.customer];
    if (typeof session !== "string" || !session) {
      session = String((await postJson(appUrl + "/chat/session", { token: issued.token })).session_id);
      const other = store.sessions[issued.customer]; // another tab made one meanwhile: one conversation
      if (typeof other === "string" && other) session = other;
      else {
        store.sessions[issued.customer] = session;
        save();
      }
    }
    return Object.assign(issued, { session: session });
  }
  /* The identity messages go out with from now on (identify's answer). */
  function signIn(identity) {
    auth = identity;
  }
  function signedIn() {
    return Boolean(auth);
  }
  /* The current identity, its token renewed first when it is about to expire (null: none yet). */
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

  return { isDemoId, identify, signIn, signedIn, freshAuth, describeCustomer };
})();
