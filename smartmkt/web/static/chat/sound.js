/* Reading the bot's replies aloud (speechSynthesis), when the customer ticks "Read replies
 * aloud"; the choice is kept with the conversations (storage.js). Only the tab in view reads
 * aloud: every tab of a chat session gets the bot's replies. */
"use strict";

window.smartmktChat.sound = (function () {
  const { el } = window.smartmktChat.page;
  const { store, save } = window.smartmktChat.storage;

  function speak(texts) {
    if (!store.sound || !("speechSynthesis" in window) || !texts.length || document.hidden) return;
    texts.forEach((t) => window.speechSynthesis.speak(new SpeechSynthesisUtterance(t)));
  }

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

  return { speak };
})();
