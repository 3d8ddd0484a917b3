/*
 * Keeps each backorder badge on the selected variant, and the cart notice on the cart.
 *
 * The badge's variants are in the page (a JSON script next to it), so switching variants calls
 * nothing. Signals: the product form's id input (its change event; Dawn sets it, also to '' for
 * a combination that does not exist), ?variant= (history), and Dawn's variantChange. The badge
 * keeps its server-rendered variant until one of them says otherwise; an empty or unknown id
 * hides it. Liquid lists at most 250 variants: a variant beyond them is read from the section
 * Dawn has just re-rendered, else from the store's own page for that variant (never the app).
 * The cart notice is re-read from the store's cart page after a cart change and put back next
 * to the checkout buttons whenever the theme re-renders them (the embed's inline script).
 */
(function () {
  'use strict';

  if (window.BackorderBadges) return; // the block and the embed may both load this file
  window.BackorderBadges = true;

  var learned = {}; // product id -> variant id -> badge, read after load
  var asked = {}; // URL -> true: each page is fetched once
  var cartRequest = 0;

  function each(selector, root, fn) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), fn);
  }

  function has(object, key) {
    return Object.prototype.hasOwnProperty.call(object, key);
  }

  function assign(target, text) {
    try {
      var source = JSON.parse(text) || {};
      for (var key in source) if (has(source, key)) target[key] = source[key];
    } catch (error) { /* a broken script is no data */ }
    return target;
  }

  function learn(doc) {
    each('script[data-backorder-badge-variants]', doc, function (script) {
      var id = script.dataset.backorderBadgeVariants;
      learned[id] = assign(learned[id] || {}, script.textContent);
    });
  }

  function dataOf(productId) {
    var data = { variants: {}, complete: true, url: '', section: '' };
    each('script[data-backorder-badge-variants="' + productId + '"]', document, function (script) {
      assign(data.variants, script.textContent);
      if (script.dataset.complete === 'false') data.complete = false;
      data.url = data.url || script.dataset.url || '';
      data.section = data.section || script.dataset.sectionId || '';
    });
    var extra = learned[productId] || {};
    for (var key in extra) if (!has(data.variants, key)) data.variants[key] = extra[key];
    return data;
  }

  // The form that buys this product: the badge's own (the embed sits in it), else the first
  // cart form with a submit button near the badge (not Dawn's installment form).
  function formOf(badge) {
    var own = badge.closest('form');
    if (own) return own;
    var scopes = [badge.closest('product-info, .shopify-section, section, main'), document];
    for (var s = 0; s < scopes.length; s++) {
      if (!scopes[s]) continue;
      var forms = scopes[s].querySelectorAll('form[action*="/cart/add"]');
      for (var i = 0; i < forms.length; i++) {
        if (forms[i].querySelector('[type="submit"], [name="add"]')) return forms[i];
      }
      if (forms.length) return forms[0];
    }
    return null;
  }

  function selectedId(badge) {
    var form = formOf(badge);
    var input = form && form.querySelector('[name="id"]');
    if (input) return String(input.value || '');
    var variant = new URL(window.location.href).searchParams.get('variant');
    return variant === null ? badge.dataset.variantId : variant;
  }

  function show(badge, id, entry) {
    var hide = !entry || !entry.label || entry.state === 'hidden' ||
      (entry.state === 'in_stock' && badge.dataset.showInStock === 'false');
    var state = entry ? entry.state : '';
    var text = entry ? entry.label : '';
    var label = badge.querySelector('.backorder-badge__label');
    badge.dataset.variantId = id;
    if (badge.dataset.state !== state) badge.dataset.state = state;
    if (label && label.textContent !== text) label.textContent = text;
    if (badge.hidden !== hide) badge.hidden = hide;
  }

  function ask(url) {
    if (asked[url]) return;
    asked[url] = true;
    fetch(url, { credentials: 'same-origin' })
      .then(function (response) { return response.ok ? response.text() : ''; })
      .then(function (html) {
        learn(new DOMParser().parseFromString(html, 'text/html'));
        update();
      })
      .catch(function () { /* the badge stays hidden */ });
  }

  function update() {
    each('[data-backorder-badge]', document, function (badge) {
      var data = dataOf(badge.dataset.productId);
      var id = selectedId(badge);
      if (id && has(data.variants, id)) return show(badge, id, data.variants[id]);
      show(badge, id, null);
      if (id && !data.complete && data.url) {
        ask(data.url + (data.url.indexOf('?') < 0 ? '?' : '&') + 'variant=' + encodeURIComponent(id) +
          (data.section ? '&section_id=' + encodeURIComponent(data.section) : ''));
      }
    });
  }

  function later() {
    window.setTimeout(update, 0);
  }

  function place() {
    if (window.BackorderBadgesPlace) window.BackorderBadgesPlace();
  }

  function refreshCart() {
    var template = document.querySelector('template[data-backorder-cart]');
    if (!template) return;
    var request = ++cartRequest;
    fetch(template.dataset.cartUrl || '/cart', { credentials: 'same-origin' })
      .then(function (response) { return response.ok ? response.text() : ''; })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html')
          .querySelector('template[data-backorder-cart]');
        var current = document.querySelector('template[data-backorder-cart]');
        if (!fresh || !current || request !== cartRequest) return;
        fresh = document.importNode(fresh, true);
        fresh.dataset.version = String(request);
        current.parentNode.replaceChild(fresh, current);
        place();
      })
      .catch(function () { /* the notice stays as it was */ });
  }

  function dawn() {
    /* global subscribe, PUB_SUB_EVENTS */
    if (dawn.done || typeof subscribe !== 'function' || typeof PUB_SUB_EVENTS === 'undefined') return;
    dawn.done = true;
    subscribe(PUB_SUB_EVENTS.variantChange, function (event) {
      var html = event && event.data && event.data.html;
      if (html && html.querySelectorAll) learn(html);
      later();
    });
    subscribe(PUB_SUB_EVENTS.cartUpdate, refreshCart);
  }

  ['pushState', 'replaceState'].forEach(function (name) {
    var original = window.history[name];
    window.history[name] = function () {
      var result = original.apply(this, arguments);
      later();
      return result;
    };
  });
  window.addEventListener('popstate', later);
  document.addEventListener('change', later, true);
  ['cart:updated', 'cart:refresh'].forEach(function (name) {
    document.addEventListener(name, refreshCart);
  });
  dawn();
  document.addEventListener('DOMContentLoaded', dawn);

  // The theme re-renders the cart drawer and cart footer: put the notice back at once.
  if (document.querySelector('template[data-backorder-cart]')) {
    new MutationObserver(place).observe(document.body, { childList: true, subtree: true });
    place();
  }
})();
