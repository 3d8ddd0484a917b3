/* Backorder Badges for BigCommerce (Stencil) product pages.
 *
 * Registered through the Scripts API as
 *   <script async src="https://APP/static/badge-widget-bc.js?store=STORE_HASH&client_id=ID">
 * on every storefront page; it does nothing unless the page has Stencil's add-to-cart form
 * (form[data-cart-item-add] with input[name=product_id]).
 *
 * 1. Loads every variant's badge of the product once: GET /storefront/v1/badges?shop=&product=.
 * 2. Finds the selected variant the way the theme itself does: it posts the option form to the
 *    storefront's own /remote/v1/product-attributes/{productId} (what stencil-utils'
 *    productAttributes.optionChange sends) and reads `data.v3_variant_id` from the answer.
 *    It does so on load and whenever the shopper changes an option, so the badge follows.
 * 3. A product tracked at product level has one badge: it is shown whatever the options.
 * 4. For a variant the shopper has to wait for, the notify-me form (static/notify-me.js, loaded
 *    only then) shows under the add-to-cart form and posts cross-origin to
 *    /storefront/v1/notify; the app answers with CORS for the store's own origins only. A
 *    signed-in shopper's /customer/current.jwt goes with it (the script URL's `client_id`
 *    names the app to the store); a guest (404) sends none.
 * The badge itself is drawn by badge-widget.js (loaded on product pages only), so it looks
 * and reads the same as everywhere else. Failures leave the page as it was.
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var src = new URL(script.src, window.location.href);
  var store = src.searchParams.get('store');
  var clientId = src.searchParams.get('client_id');
  var api = src.origin + '/storefront/v1/badges';
  if (!store) { return; }

  var render = function () {};  // replaced by the shared renderer once it is loaded

  // The badge is drawn by badge-widget.js's renderer, shared with every storefront.
  function withRenderer(then) {
    if (window.BackorderBadges) { then(window.BackorderBadges.render); return; }
    var shared = document.createElement('script');
    shared.async = true;
    shared.src = src.origin + '/static/badge-widget.js';
    shared.onload = function () {
      if (window.BackorderBadges) { then(window.BackorderBadges.render); }
    };
    document.head.appendChild(shared);
  }

  // The notify-me form, from notify-me.js: loaded the first time a variant needs it.
  var notifyLoading = null;
  function withNotify(then) {
    if (window.BackorderNotify) { then(window.BackorderNotify); return; }
    if (!notifyLoading) {
      notifyLoading = new Promise(function (resolve) {
        var shared = document.createElement('script');
        shared.async = true;
        shared.src = src.origin + '/static/notify-me.js';
        shared.onload = function () { resolve(window.BackorderNotify || null); };
        shared.onerror = function () { resolve(null); };
        document.head.appendChild(shared);
      });
    }
    notifyLoading.then(function (shared) { if (shared) { then(shared); } });
  }

  function locale() {
    return document.documentElement.lang || '';
  }

  // Who the store says the shopper is: its signed JWT, or nothing for a guest (404).
  function customerJwt() {
    if (!clientId) { return Promise.resolve(null); }
    return fetch('/customer/current.jwt?app_client_id=' + encodeURIComponent(clientId), {
      credentials: 'same-origin'
    })
      .then(function (r) { return r.ok ? r.text() : ''; })
      .then(function (text) {
        var token = (text || '').trim();
        if (token.charAt(0) === '{') {
          try { token = JSON.parse(token).token || ''; } catch (error) { token = ''; }
        }
        return token ? { customer_jwt: token } : null;
      })
      .catch(function () { return null; });
  }

  // Under the add-to-cart form: appearing there, it never pushes the options the shopper is
  // clicking out from under the pointer.
  function notifyForm(form) {
    var box = document.createElement('div');
    form.parentNode.insertBefore(box, form.nextSibling);
    return window.BackorderNotify.create(box, {
      formUrl: function (variant) {
        return src.origin + '/storefront/v1/notify/form?shop=' + encodeURIComponent(store) +
          '&variant=' + encodeURIComponent(variant) + '&locale=' + encodeURIComponent(locale());
      },
      postUrl: src.origin + '/storefront/v1/notify?shop=' + encodeURIComponent(store),
      fields: { shop: store, form: 'bigcommerce_script', locale: locale() },
      credentials: 'omit',
      beforeSend: customerJwt
    });
  }

  function formBody(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === 'string') { params.append(key, value); }
    });
    return params.toString();
  }

  function selectedVariant(form, productId) {
    return fetch('/remote/v1/product-attributes/' + encodeURIComponent(productId), {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8',
        'X-Requested-With': 'XMLHttpRequest',
        'stencil-config': '{}',
        'stencil-options': '{}'
      },
      body: formBody(form)
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (answer) {
        var data = answer && answer.data;
        var id = data && (data.v3_variant_id || data.variantId);
        return id ? String(id) : null;
      });
  }

  function placeholder(form) {
    var el = document.querySelector('[data-backorder-badge]');
    if (!el) {
      el = document.createElement('div');
      el.setAttribute('data-backorder-badge', '');
      el.style.margin = '.5em 0';
      form.parentNode.insertBefore(el, form);
    }
    el.setAttribute('role', 'status');
    el.setAttribute('aria-live', 'polite');
    el.hidden = true;
    return el;
  }

  function init(form) {
    var input = form.querySelector('input[name="product_id"]');
    var productId = input && input.value;
    if (!productId) { return; }
    var el = placeholder(form);
    var badges = {};
    var asked = 0;
    var timer = null;
    var notify = null;
    var latest = null;

    // The badge, and the notify-me form for the variant it belongs to.
    function draw(id) {
      var badge = id ? badges[id] : null;
      render(el, badge);
      var state = badge && badge.state;
      latest = { id: id, state: state };
      if (notify) { notify.show(id, state); return; }
      if (state !== 'out_of_stock' && state !== 'backorder') { return; }
      withNotify(function () {
        if (!notify) { notify = notifyForm(form); }
        notify.show(latest.id, latest.state);  // the shopper may have moved on meanwhile
      });
    }

    function show() {
      var ids = Object.keys(badges);
      // One badge for the whole product: product-level tracking, or no options at all.
      var single = ids.length === 1 ? ids[0] : null;
      if (ids.length === 0) { draw(null); return; }
      if (single && !form.querySelector('[data-product-attribute]')) {
        draw(single);
        return;
      }
      var mine = ++asked;
      selectedVariant(form, productId).then(function (id) {
        if (mine !== asked) { return; }  // a newer option change is on its way
        draw(id && badges[id] ? id : single);
      }).catch(function () { if (mine === asked) { draw(single); } });
    }

    // The labels and the date come back in the page's language (when the store publishes it).
    var lang = document.documentElement.lang;
    var url = api + '?shop=' + encodeURIComponent(store) +
      '&product=' + encodeURIComponent(productId) +
      (lang ? '&locale=' + encodeURIComponent(lang) : '');
    fetch(url, { credentials: 'omit' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.enabled !== false && data.variants) { badges = data.variants; }
        show();
      })
      .catch(function () { /* no badge, page unchanged */ });

    form.addEventListener('change', function () {
      clearTimeout(timer);
      timer = setTimeout(show, 100);
    });
  }

  function start() {
    var forms = document.querySelectorAll('form[data-cart-item-add]');
    if (!forms.length) { return; }
    withRenderer(function (shared) {
      render = shared;
      for (var i = 0; i < forms.length; i++) { init(forms[i]); }
    });
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
