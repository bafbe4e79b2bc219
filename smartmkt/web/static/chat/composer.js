/* The message box and the buttons in the conversation (suggested answers, the cards' buttons):
 * what the customer sends, on the page and in the widget alike. */
"use strict";

window.smartmktChat.composer = (function () {
  const { el } = window.smartmktChat.page;
  const { sendPayload } = window.smartmktChat.socket;

  function wire() {
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
  }

  return { wire };
})();
