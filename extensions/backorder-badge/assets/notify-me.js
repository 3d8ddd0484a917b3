/*
 * The notify-me form of the app block and the app embed (snippets/notify-me.liquid).
 *
 * It follows the selected variant with the same signals as backorder-badge.js (the product
 * form's change events, history changes) and the badge states already in the page. Where the
 * form is offered, its words in the shopper's language and the consent version are in the page
 * too (JSON the snippet writes from the app's shop metafield), so the page asks the app nothing
 * until the shopper signs up. Sign-ups go through the app proxy, which tells the app which shop
 * it is (never the page).
 * The same behaviour as the app's own static/notify-me.js (sandbox, BigCommerce): a theme
 * cannot load scripts from the app, so it lives here too. Words from the app are set as text.
 */
(function () {
  'use strict';

  if (window.BackorderNotifyShopify) return;
  window.BackorderNotifyShopify = true;

  var NEEDS_CONFIG = ['out_of_stock', 'backorder'];

  function variantsOf(productId) {
    var script = document.querySelector('script[data-backorder-badge-variants="' + productId + '"]');
    if (!script) return {};
    try {
      return JSON.parse(script.textContent) || {};
    } catch (error) {
      return {};
    }
  }

  function productForm(node) {
    var scope = node.closest('.shopify-section, section, main') || document;
    return scope.querySelector('form[action*="/cart/add"]') || document.querySelector('form[action*="/cart/add"]');
  }

  function selectedVariantId(form) {
    var input = form && form.querySelector('[name="id"]');
    if (input) return String(input.value || '');
    return new URL(window.location.href).searchParams.get('variant') || '';
  }

  // The form's configuration the snippet wrote into the page, or null (not pushed yet).
  function configOf(widget) {
    var script = widget.querySelector('script[data-backorder-notify-config]');
    try {
      return script ? JSON.parse(script.textContent) : null;
    } catch (error) {
      return null;
    }
  }

  function bind(widget) {
    var form = widget.querySelector('form');
    var email = widget.querySelector('input[name="email"]');
    var consent = widget.querySelector('input[name="consent"]');
    var website = widget.querySelector('input[name="website"]');
    var button = widget.querySelector('button[type="submit"]');
    var status = widget.querySelector('[role="status"]');
    var emailError = widget.querySelector('[data-notify-error="email"]');
    var consentError = widget.querySelector('[data-notify-error="consent"]');
    var current = null;
    var shownFor = null;
    var done = {};
    var sending = false;
    var config = configOf(widget);
    if (config) words(config);

    function words(cfg) {
      var texts = cfg.texts || {};
      Array.prototype.forEach.call(widget.querySelectorAll('[data-notify-text]'), function (el) {
        var text = texts[el.dataset.notifyText];
        if (typeof text === 'string') el.textContent = text;
        if (el.dataset.notifyText === 'intro') el.hidden = !text;
      });
      if (cfg.locale) widget.setAttribute('lang', cfg.locale);
    }

    function clearErrors() {
      emailError.textContent = '';
      consentError.textContent = '';
      email.removeAttribute('aria-invalid');
      consent.removeAttribute('aria-invalid');
    }

    function drawFor(variant) {
      if (shownFor === variant) return;
      shownFor = variant;
      clearErrors();
      status.textContent = done[variant] || '';
      form.hidden = Boolean(done[variant]);
    }

    function show(variant, state) {
      current = { variant: variant, state: state };
      if (!variant || NEEDS_CONFIG.indexOf(state) === -1) {
        widget.hidden = true;
        return;
      }
      if (!config || !config.enabled || (config.show_on || []).indexOf(state) === -1) {
        widget.hidden = true;
        return;
      }
      drawFor(variant);
      widget.hidden = false;
    }

    function refuse(message, field) {
      var onConsent = field === 'consent';
      var target = onConsent ? consent : email;
      (onConsent ? consentError : emailError).textContent = message;
      if (field) target.setAttribute('aria-invalid', 'true');
      target.focus();
    }

    function succeed(variant, message) {
      done[variant] = message;
      status.textContent = message;
      form.hidden = true;
      status.focus();
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (sending || !current || !config) return;
      var variant = current.variant;
      clearErrors();
      var messages = config.messages || {};
      var offline = widget.dataset.offline;
      var address = email.value.trim();
      if (!address) return refuse(messages.invalid_email || offline, 'email');
      if (!consent.checked) {
        return refuse(messages.consent_required || widget.dataset.consentRequired, 'consent');
      }
      sending = true;
      button.setAttribute('aria-disabled', 'true');
      fetch(widget.dataset.proxyPath.replace(/\/+$/, '') + '/notify', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({
          variant: variant,
          email: address,
          // The language the form is worded in: its consent version is that wording's.
          locale: config.locale || widget.dataset.locale || '',
          consent_version: config.consent_version,
          consent: true,
          form: widget.dataset.form,
          page: window.location.href,
          website: website.value
        })
      })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (body) {
            return { ok: r.ok, body: body || {} };
          });
        })
        .then(function (answer) {
          var body = answer.body;
          if (answer.ok) succeed(variant, body.message || messages[body.status] || messages.subscribed);
          else refuse(body.message || messages[body.error] || offline, body.field || null);
        })
        .catch(function () { refuse(offline, null); })
        .then(function () {
          sending = false;
          button.removeAttribute('aria-disabled');
        });
    });

    return show;
  }

  // The embed's form goes after the product's buy form (never inside it: forms don't nest),
  // unless the theme shows the app block's form already.
  function placeEmbeds() {
    var embeds = document.querySelectorAll('[data-backorder-notify][data-form="shopify_embed"]');
    Array.prototype.forEach.call(embeds, function (embed) {
      if (document.querySelector('[data-backorder-notify][data-form="shopify_block"]')) {
        embed.remove();
        return;
      }
      var forms = document.querySelectorAll('form[action*="/cart/add"]');
      var buy = Array.prototype.filter.call(forms, function (f) {
        return f.querySelector('[type="submit"]');
      })[0] || forms[0];
      var after = buy && (buy.closest('product-form') || buy);
      if (after && after.parentNode) after.parentNode.insertBefore(embed, after.nextSibling);
    });
  }

  function update() {
    var widgets = document.querySelectorAll('[data-backorder-notify]');
    Array.prototype.forEach.call(widgets, function (widget) {
      if (!widget.backorderNotify) widget.backorderNotify = bind(widget);
      var variants = variantsOf(widget.dataset.productId);
      var id = selectedVariantId(productForm(widget));
      var entry = Object.prototype.hasOwnProperty.call(variants, id) ? variants[id] : null;
      widget.backorderNotify(id, entry && entry.state);
    });
  }

  function later() {
    window.setTimeout(update, 0);
  }

  ['pushState', 'replaceState'].forEach(function (name) {
    var original = window.history[name];
    window.history[name] = function () {
      var result = original.apply(this, arguments);
      later();
      return result;
    };
  });
  window.addEventListener('popstate', update);
  document.addEventListener('change', later, true);

  placeEmbeds();
  update();
})();
