/* Sign in: POST /console/api/login, then on to the page that sent us here (console pages only). */
"use strict";

(function () {
  const { api, ApiError, say } = window.smartmktConsole;
  const form = document.getElementById("login-form");
  const status = document.getElementById("login-status");

  function nextPage() {
    const next = new URLSearchParams(location.search).get("next") || "";
    // only a path inside the console: never an open redirect to another site
    return /^\/console(\/|$)/.test(next) && !next.startsWith("//") ? next : "/console/conversations";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = form.email.value.trim();
    const password = form.password.value;
    if (!email || !password) {
      say(status, "Enter your e-mail and password.", "error");
      (email ? form.password : form.email).focus();
      return;
    }
    say(status, "Signing in…");
    try {
      await api("POST", "/login", { email: email, password: password }, { noRedirect: true });
      location.assign(nextPage());
    } catch (err) {
      const wrong = err instanceof ApiError && err.status === 401;
      say(status, wrong ? "Wrong e-mail or password." : "Sign-in failed: " + err.message, "error");
      form.password.value = "";
      form.password.focus();
    }
  });
  form.querySelector('button[type="submit"]').disabled = false;
  form.email.focus();
})();
