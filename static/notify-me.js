/* Backorder Badges "notify me" form, shared by the sandbox product page and the BigCommerce
 * script (badge-widget-bc.js), so both draw and behave the same. Shopify's theme block has its
 * own copy of this behaviour (extensions/backorder-badge/assets/notify-me.js): a theme cannot
 * load scripts from the app.
 *
 *   var form = window.BackorderNotify.create(container, {
 *     formUrl: function (variant) { return 'https://APP/storefront/v1/notify/form?...'; },
 *     postUrl: 'https://APP/storefront/v1/notify?shop=...',
 *     fields: { shop: 'store', form: 'bigcommerce_script', locale: 'fr' },
 *     credentials: 'omit',              // cross-origin: no cookies to the app
 *     beforeSend: function () { ... }   // optional: a promise of extra fields (customer_jwt)
 *   });
 *   form.show(variantId, badgeState);   // on every variant or badge change
 *
 * Nothing is asked of the app until a variant needs the form (out of stock, or on backorder
 * when the shop offers it there); the form's words and consent version come from the app, once
 * per page. Everything from the app is set as text, never as HTML.
 */
(function () {
  'use strict';

  if (window.BackorderNotify) { return; }

  var NEEDS_CONFIG = ['out_of_stock', 'backorder'];
  // Said only when the app cannot be reached at all (no answer to take words from).
  var OFFLINE = {
    en: 'Something went wrong. Please try again.',
    fr: 'Une erreur est survenue. Veuillez réessayer.',
    de: 'Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.',
    es: 'Algo salió mal. Inténtalo de nuevo.'
  };
  // Asked of the shopper before anything is sent, when the app's answer has no wording for it.
  var CONSENT = {
    en: 'Please tick the box to agree to the email.',
    fr: "Cochez la case pour accepter l'e-mail.",
    de: 'Bitte setzen Sie das Häkchen, um der E-Mail zuzustimmen.',
    es: 'Marca la casilla para aceptar el correo.'
  };
  var STYLE = [
    '.bb-notify{margin:1em 0;padding:1em 1.1em;border:1px solid #d0d7de;border-radius:8px;',
    'background:#fff;color:inherit;font:inherit;max-width:32em;box-sizing:border-box}',
    '.bb-notify[hidden],.bb-notify [hidden]{display:none!important}',
    '.bb-notify__heading{margin:0 0 .3em;font-size:1.1em;font-weight:600;line-height:1.3}',
    '.bb-notify__intro{margin:0 0 .8em;font-size:.95em;opacity:.85}',
    '.bb-notify__label{display:block;font-weight:600;margin:0 0 .3em}',
    '.bb-notify__email{display:block;width:100%;box-sizing:border-box;padding:.55em .7em;',
    'font:inherit;border:1px solid #8c959f;border-radius:6px;background:#fff;color:#1f2328}',
    '.bb-notify__email[aria-invalid=true]{border-color:#cf222e;outline:1px solid #cf222e}',
    '.bb-notify__error{margin:.3em 0 0;color:#cf222e;font-size:.9em}',
    '.bb-notify__error:empty{margin:0}',
    '.bb-notify__consent{display:flex;gap:.5em;align-items:flex-start;margin:.8em 0 0;',
    'font-size:.9em;line-height:1.4}',
    '.bb-notify__consent input{margin:.2em 0 0;flex:none;width:1.05em;height:1.05em}',
    '.bb-notify__consent label{font-weight:400;margin:0;display:inline}',
    '.bb-notify__button{margin-top:.9em;padding:.6em 1.4em;font:inherit;font-weight:600;',
    'color:#fff;background:#1f2328;border:1px solid #1f2328;border-radius:6px;cursor:pointer}',
    '.bb-notify__button[aria-disabled=true]{opacity:.6;cursor:progress}',
    '.bb-notify__status{margin:0;font-weight:600;color:#1a7f37}',
    '.bb-notify__status:not(:empty){margin-top:.2em}',
    '.bb-notify__hp{position:absolute!important;left:-10000px;top:auto;width:1px;height:1px;',
    'overflow:hidden}'
  ].join('');
  var made = 0;

  function addStyle() {
    if (document.getElementById('bb-notify-style')) { return; }
    var style = document.createElement('style');
    style.id = 'bb-notify-style';
    style.textContent = STYLE;
    (document.head || document.documentElement).appendChild(style);
  }

  function node(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { el.setAttribute(name, attrs[name]); });
    return el;
  }

  // The form's markup: the same structure (and class names) as the Shopify snippet's.
  function build(container) {
    var id = 'bb-notify-' + (++made);
    container.classList.add('bb-notify');
    container.setAttribute('data-backorder-notify', '');
    container.hidden = true;
    container.textContent = '';
    var parts = {
      form: node('form', { 'class': 'bb-notify__form', novalidate: '' }),
      heading: node('h2', { 'class': 'bb-notify__heading' }),
      intro: node('p', { 'class': 'bb-notify__intro' }),
      label: node('label', { 'class': 'bb-notify__label', 'for': id + '-email' }),
      email: node('input', {
        'class': 'bb-notify__email', id: id + '-email', type: 'email', name: 'email',
        autocomplete: 'email', inputmode: 'email', required: '',
        'aria-describedby': id + '-email-error'
      }),
      emailError: node('p', { 'class': 'bb-notify__error', id: id + '-email-error', role: 'alert' }),
      consentBox: node('input', {
        id: id + '-consent', type: 'checkbox', name: 'consent', required: '',
        'aria-describedby': id + '-consent-error'
      }),
      consentLabel: node('label', { 'for': id + '-consent' }),
      consentError: node('p', {
        'class': 'bb-notify__error', id: id + '-consent-error', role: 'alert'
      }),
      button: node('button', { 'class': 'bb-notify__button', type: 'submit' }),
      status: node('p', {
        'class': 'bb-notify__status', role: 'status', 'aria-live': 'polite', tabindex: '-1'
      })
    };
    var consent = node('div', { 'class': 'bb-notify__consent' });
    consent.appendChild(parts.consentBox);
    consent.appendChild(parts.consentLabel);
    // The bot trap: out of sight and out of reach for people; bots fill it in.
    var trap = node('div', { 'class': 'bb-notify__hp', 'aria-hidden': 'true' });
    var trapLabel = node('label', { 'for': id + '-website' });
    trapLabel.textContent = 'Website';
    parts.website = node('input', {
      id: id + '-website', type: 'text', name: 'website', tabindex: '-1',
      autocomplete: 'off', 'aria-hidden': 'true'
    });
    trap.appendChild(trapLabel);
    trap.appendChild(parts.website);
    [parts.heading, parts.intro, parts.label, parts.email, parts.emailError, consent,
      parts.consentError, trap, parts.button].forEach(function (el) { parts.form.appendChild(el); });
    container.appendChild(parts.form);
    container.appendChild(parts.status);
    return parts;
  }

  function readJson(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      return { ok: response.ok, status: response.status, body: body || {} };
    });
  }

  function create(container, options) {
    addStyle();
    var parts = build(container);
    var config = null;      // the promise of the app's answer: words, consent version, show_on
    var current = null;     // { variant, state } the page shows now
    var shownFor = null;    // the variant the form was last drawn for
    var done = {};          // variant -> the success message the shopper saw
    var sending = false;

    function loadConfig(variant) {
      if (!config) {
        config = fetch(options.formUrl(variant), {
          credentials: options.credentials || 'omit',
          headers: { Accept: 'application/json' }
        })
          .then(function (r) { return r.ok ? r.json() : null; })
          .catch(function () { return null; });
      }
      return config;
    }

    function words(cfg) {
      var texts = cfg.texts || {};
      parts.heading.textContent = texts.heading || '';
      parts.intro.textContent = texts.intro || '';
      parts.intro.hidden = !texts.intro;
      parts.label.textContent = texts.email_label || '';
      parts.consentLabel.textContent = texts.consent || '';
      parts.button.textContent = texts.button || '';
      if (cfg.locale) { container.setAttribute('lang', cfg.locale); }
    }

    function clearErrors() {
      parts.emailError.textContent = '';
      parts.consentError.textContent = '';
      parts.email.removeAttribute('aria-invalid');
      parts.consentBox.removeAttribute('aria-invalid');
    }

    function drawFor(variant) {
      if (shownFor === variant) { return; }
      shownFor = variant;
      clearErrors();
      parts.status.textContent = done[variant] || '';
      parts.form.hidden = Boolean(done[variant]);
    }

    function hide() {
      container.hidden = true;
    }

    function show(variant, state) {
      variant = variant == null ? '' : String(variant);
      current = { variant: variant, state: state };
      if (!variant || NEEDS_CONFIG.indexOf(state) === -1) { hide(); return; }
      loadConfig(variant).then(function (cfg) {
        if (!current || current.variant !== variant || current.state !== state) { return; }
        var offered = cfg && cfg.enabled && (cfg.show_on || []).indexOf(state) !== -1;
        if (!offered) { hide(); return; }
        words(cfg);
        drawFor(variant);
        container.hidden = false;
      });
    }

    function refuse(message, field) {
      var onConsent = field === 'consent';
      var target = onConsent ? parts.consentBox : parts.email;
      (onConsent ? parts.consentError : parts.emailError).textContent = message;
      if (field) { target.setAttribute('aria-invalid', 'true'); }
      target.focus();
    }

    function succeed(variant, message) {
      done[variant] = message;
      parts.status.textContent = message;
      parts.form.hidden = true;
      parts.status.focus();
    }

    parts.form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (sending || !current) { return; }
      var variant = current.variant;
      clearErrors();
      config.then(function (cfg) {
        var messages = (cfg && cfg.messages) || {};
        var language = (cfg && cfg.locale) || 'en';
        var offline = OFFLINE[language] || OFFLINE.en;
        var email = parts.email.value.trim();
        if (!email) { refuse(messages.invalid_email || offline, 'email'); return; }
        if (!parts.consentBox.checked) {
          refuse(messages.consent_required || CONSENT[language] || CONSENT.en, 'consent');
          return;
        }
        sending = true;
        parts.button.setAttribute('aria-disabled', 'true');
        var payload = {
          variant: variant,
          email: email,
          consent_version: cfg.consent_version,
          consent: true,
          page: window.location.href,
          website: parts.website.value
        };
        Object.keys(options.fields || {}).forEach(function (k) { payload[k] = options.fields[k]; });
        Promise.resolve(options.beforeSend ? options.beforeSend() : null)
          .then(function (extra) {
            Object.keys(extra || {}).forEach(function (k) { payload[k] = extra[k]; });
            return fetch(options.postUrl, {
              method: 'POST',
              credentials: options.credentials || 'omit',
              headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
              body: JSON.stringify(payload)
            });
          })
          .then(readJson)
          .then(function (answer) {
            var body = answer.body;
            if (answer.ok) {
              succeed(variant, body.message || messages[body.status] || messages.subscribed);
            } else {
              refuse(body.message || messages[body.error] || offline, body.field || null);
            }
          })
          .catch(function () { refuse(offline, null); })
          .then(function () {
            sending = false;
            parts.button.removeAttribute('aria-disabled');
          });
      });
    });

    return { show: show, hide: hide, element: container };
  }

  window.BackorderNotify = { create: create };
})();
