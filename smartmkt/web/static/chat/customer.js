/* The demo's customer picker and the switch from one customer to another: sign in as the
 * customer (identity.js), make their conversation the current one (storage.js), show it and
 * open the channel with their session (socket.js). */
"use strict";

window.smartmktChat.customer = (function () {
  const { el, root } = window.smartmktChat.page;
  const storage = window.smartmktChat.storage;
  const identity = window.smartmktChat.identity;
  const socket = window.smartmktChat.socket;
  const { renderHistory, typing } = window.smartmktChat.render;

  let switching = 0;
  async function switchTo(customer) {
    const attempt = ++switching;
    el.customerId.value = customer && identity.isDemoId(customer) ? customer : ""; // now, not after the await
    socket.hangUp();
    root.dataset.connected = "false";
    el.connection.textContent = "Signing in…";
    let issued;
    try {
      issued = await identity.identify(customer);
    } catch (err) {
      if (attempt === switching) el.connection.textContent = "Can't sign in to the assistant (" + err.message + ").";
      return;
    }
    if (attempt !== switching) return; // the customer picked someone else meanwhile
    identity.signIn(issued);
    const ref = issued.customer;
    storage.makeCurrent(ref);
    el.customerNow.textContent = identity.describeCustomer(ref);
    root.dataset.customer = ref;
    root.dataset.sender = issued.session;
    typing(false);
    socket.dropPending();
    renderHistory();
    socket.connect();
  }

  el.customerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = el.customerId.value.trim();
    if (!identity.isDemoId(value)) {
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

  return { switchTo };
})();
