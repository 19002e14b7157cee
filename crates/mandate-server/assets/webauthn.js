// Passkeys on Mandate's pages, as progressive enhancement: without this script (or without
// WebAuthn in the browser) every page still works with passwords, and the passkey parts stay
// hidden. Elements opt in with data attributes:
//   [data-passkey-signin]    sign in: a button, and autofill in the username field
//                            (conditional mediation) when the browser offers it
//   [data-passkey-register]  add a passkey: a button (and an optional name field)
// Each carries data-options (where to get the ceremony's options) and data-action (where
// the answer is posted as a normal form, so the server's answer is a normal navigation).
// The form fields they need (csrf, interaction, return_to) are read from the nearest
// [data-passkey-fields] element's hidden inputs.
"use strict";
(() => {
  const supported = typeof window.PublicKeyCredential === "function" &&
    navigator.credentials && typeof navigator.credentials.get === "function";

  const b64u = {
    enc(buf) {
      const bytes = new Uint8Array(buf);
      let s = "";
      for (const b of bytes) s += String.fromCharCode(b);
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
    dec(text) {
      const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
      return out.buffer;
    },
  };

  function fieldsOf(el) {
    const scope = el.closest("[data-passkey-fields]") || document;
    const out = {};
    for (const input of scope.querySelectorAll("input[type=hidden]")) {
      if (["csrf", "interaction", "return_to"].includes(input.name)) out[input.name] = input.value;
    }
    return out;
  }

  async function options(el, extra) {
    const body = new URLSearchParams({ ...fieldsOf(el), ...(extra || {}) });
    const r = await fetch(el.dataset.options, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!r.ok) throw new Error("options " + r.status);
    return r.json();
  }

  function submit(el, fields) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = el.dataset.action;
    form.hidden = true;
    for (const [name, value] of Object.entries({ ...fieldsOf(el), ...fields })) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
  }

  function showError(el, err) {
    const box = el.querySelector("[data-passkey-error]");
    if (!box) return;
    // A person who closes the browser's dialog did nothing wrong.
    if (err && (err.name === "AbortError" || err.name === "NotAllowedError")) {
      box.textContent = el.dataset.cancelled || "";
    } else {
      box.textContent = el.dataset.failed || String(err);
    }
    box.hidden = !box.textContent;
  }

  function assertionJSON(c) {
    const r = c.response;
    return JSON.stringify({
      id: c.id,
      rawId: b64u.enc(c.rawId),
      type: c.type,
      response: {
        authenticatorData: b64u.enc(r.authenticatorData),
        clientDataJSON: b64u.enc(r.clientDataJSON),
        signature: b64u.enc(r.signature),
        userHandle: r.userHandle ? b64u.enc(r.userHandle) : null,
      },
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
    });
  }

  function attestationJSON(c) {
    const r = c.response;
    return JSON.stringify({
      id: c.id,
      rawId: b64u.enc(c.rawId),
      type: c.type,
      response: {
        attestationObject: b64u.enc(r.attestationObject),
        clientDataJSON: b64u.enc(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : undefined,
      },
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
    });
  }

  function requestOptions(o) {
    const pk = o.publicKey;
    pk.challenge = b64u.dec(pk.challenge);
    for (const c of pk.allowCredentials || []) c.id = b64u.dec(c.id);
    return pk;
  }

  function creationOptions(o) {
    const pk = o.publicKey;
    pk.challenge = b64u.dec(pk.challenge);
    pk.user.id = b64u.dec(pk.user.id);
    for (const c of pk.excludeCredentials || []) c.id = b64u.dec(c.id);
    return pk;
  }

  async function signIn(el, mediation, signal) {
    const o = await options(el);
    const cred = await navigator.credentials.get({
      publicKey: requestOptions(o),
      mediation,
      signal,
    });
    if (cred) submit(el, { ceremony: o.ceremony, credential: assertionJSON(cred) });
  }

  function setUpSignIn(el) {
    let autofill = null;
    const button = el.querySelector("[data-passkey-button]");
    if (button) {
      button.addEventListener("click", () => {
        if (autofill) autofill.abort();
        signIn(el, "optional").catch((e) => showError(el, e));
      });
    }
    el.hidden = false;
    // Autofill: the browser lists passkeys in the username field's suggestions (not again
    // right after a failed attempt: the page says data-autofill="off").
    if (el.dataset.autofill !== "off" && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((yes) => {
        if (!yes) return;
        autofill = new AbortController();
        signIn(el, "conditional", autofill.signal).catch((e) => {
          if (e && e.name !== "AbortError") showError(el, e);
        });
      });
    }
  }

  function setUpRegister(el) {
    const button = el.querySelector("[data-passkey-button]");
    const name = el.querySelector("input[name=name]");
    el.hidden = false;
    button.addEventListener("click", async () => {
      try {
        const o = await options(el);
        const cred = await navigator.credentials.create({ publicKey: creationOptions(o) });
        submit(el, {
          ceremony: o.ceremony,
          credential: attestationJSON(cred),
          name: name ? name.value : "",
        });
      } catch (e) {
        showError(el, e);
      }
    });
  }

  if (!supported) return;
  document.querySelectorAll("[data-passkey-signin]").forEach(setUpSignIn);
  document.querySelectorAll("[data-passkey-register]").forEach(setUpRegister);
})();
