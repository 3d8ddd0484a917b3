/* Backorder Badges for BigCommerce (Stencil) storefronts; loaded on every page by the Scripts API
 * as badge-widget-bc.js?store=HASH&client_id=ID. README ("The BigCommerce storefront script").
 * Product forms (form[data-cart-item-add], also those added later: quick view): a badge slot in
 * the form (after .form-field--stock, before Add to Cart), its height reserved at once; each
 * product's badges asked once; the variant from BCData.product_attributes at load, then from
 * the theme's `onProductOptionsChanged` (its own product-attributes answer: keyboard changes
 * too, no second request); else one stencil-utils-like request with the CSRF header.
 * Cart page ([data-cart]): a notice lists the lines on backorder with their date, in words.
 * badge-widget.js draws the badge; notify-me.js the notify-me form. Failures change nothing.
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var src = new URL(script.src, location.href);
  var store = src.searchParams.get('store');
  var clientId = src.searchParams.get('client_id');
  if (!store) { return; }
  var enc = encodeURIComponent;
  var lang = document.documentElement.lang || '';
  var api = src.origin + '/storefront/v1/badges?shop=' + enc(store);
  var apiTail = lang ? '&locale=' + enc(lang) : '';
  var bc = window.BCData;
  var forms = [];       // one entry per product form seen
  var touched = null;   // the form the shopper last touched
  var products = {};    // product id -> its badges (a promise), asked once per page

  function json(url, options) {
    return fetch(url, options).then(function (r) { return r.ok ? r.json() : null; });
  }

  function badgesOf(productId) {
    if (!products[productId]) {
      products[productId] = json(api + '&product=' + enc(productId) + apiTail, {
        credentials: 'omit'
      }).then(function (data) {
        return data && data.enabled !== false && data.variants || {};
      }).catch(function () { return {}; });
    }
    return products[productId];
  }

  // The badge is drawn by badge-widget.js's renderer, shared with every storefront.
  var renderer = null;
  function withRenderer() {
    if (!renderer) {
      renderer = new Promise(function (resolve) {
        if (window.BackorderBadges) { resolve(window.BackorderBadges.render); return; }
        load('badge-widget.js', function () {
          resolve(window.BackorderBadges ? window.BackorderBadges.render : null);
        });
      });
    }
    return renderer;
  }

  function load(name, done) {
    var shared = document.createElement('script');
    shared.async = true;
    shared.src = src.origin + '/static/' + name;
    shared.onload = shared.onerror = done;
    document.head.appendChild(shared);
  }

  // The notify-me form, from notify-me.js: loaded the first time a variant needs it.
  var notifyLoading = null;
  function withNotify(then) {
    if (!notifyLoading) {
      notifyLoading = new Promise(function (resolve) {
        if (window.BackorderNotify) { resolve(window.BackorderNotify); return; }
        load('notify-me.js', function () { resolve(window.BackorderNotify || null); });
      });
    }
    notifyLoading.then(function (shared) { if (shared) { then(shared); } });
  }

  // Who the store says the shopper is: its signed JWT, or nothing for a guest (404).
  function customerJwt() {
    if (!clientId) { return Promise.resolve(null); }
    return fetch('/customer/current.jwt?app_client_id=' + enc(clientId), {
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
  function notifyForm(shared, form) {
    var box = document.createElement('div');
    form.parentNode.insertBefore(box, form.nextSibling);
    return shared.create(box, {
      formUrl: function (variant) {
        return src.origin + '/storefront/v1/notify/form?shop=' + enc(store) +
          '&variant=' + enc(variant) + '&locale=' + enc(lang);
      },
      postUrl: src.origin + '/storefront/v1/notify?shop=' + enc(store),
      fields: { shop: store, form: 'bigcommerce_script', locale: lang },
      credentials: 'omit',
      beforeSend: customerJwt
    });
  }

  // What stencil-utils' productAttributes.optionChange sends: the form, with the CSRF header.
  function optionChange(form, productId) {
    var body = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === 'string') { body.append(key, value); }
    });
    return json('/remote/v1/product-attributes/' + enc(productId), {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8',
        'x-xsrf-token': bc && bc.csrf_token || '',
        'x-requested-with': 'stencil-utils',
        'stencil-config': '{}',
        'stencil-options': '{}'
      },
      body: body.toString()
    }).then(function (answer) { return answer && answer.data; });
  }

  function variantOf(data) {
    var id = data && data.v3_variant_id;
    return id ? String(id) : '';
  }

  // Inside the form, next to the theme's stock text and the Add to Cart button; the slot keeps
  // one badge line's height from the start, so the badge appearing never shifts the page.
  function slot(form) {
    var el = form.querySelector('[data-backorder-badge]');
    if (el) { return el; }
    var box = document.createElement('div');
    box.setAttribute('data-backorder-slot', '');
    box.style.minHeight = '2.2em';
    box.style.minHeight = 'calc(1lh + .4em + 2px)';  // the pill's line, no more
    el = document.createElement('div');
    el.setAttribute('data-backorder-badge', '');
    el.hidden = true;
    box.appendChild(el);
    var stock = form.querySelector('.form-field--stock');
    var before = stock ? stock.nextSibling
      : form.querySelector('#add-to-cart-wrapper, .add-to-cart-wrapper, [type="submit"]');
    (before ? before.parentNode : form).insertBefore(box, before);
    return el;
  }

  function Product(form, productId, atLoad) {
    var self = this;
    var el = slot(form);
    var notify = null;
    var latest = null;
    var asked = 0;
    el.setAttribute('role', 'status');
    el.setAttribute('aria-live', 'polite');
    self.form = form;
    self.badges = null;

    // The badge, and the notify-me form for the variant it belongs to.
    function draw(id, render) {
      var badge = id ? self.badges[id] : null;
      render(el, badge);
      var state = badge && badge.state;
      latest = { id: id, state: state };
      if (notify) { notify.show(id, state); return; }
      if (state !== 'out_of_stock' && state !== 'backorder') { return; }
      withNotify(function (shared) {
        if (!notify) { notify = notifyForm(shared, form); }
        notify.show(latest.id, latest.state);  // the shopper may have moved on meanwhile
      });
    }

    // The variant the theme chose ('' for none); null: ask the store once.
    self.choose = function (id) {
      var mine = ++asked;
      var ready = badgesOf(productId);
      var asking = id === null ? optionChange(form, productId).then(variantOf) : id;
      Promise.all([ready, asking, withRenderer()]).then(function (got) {
        if (mine !== asked || !got[2]) { return; }  // a newer change is on its way
        self.badges = got[0];
        var ids = Object.keys(self.badges);
        var single = ids.length === 1 ? ids[0] : null;
        var shown = got[1] && self.badges[got[1]] ? got[1] : (got[1] && single);
        if (!ids.length) { (el.closest('[data-backorder-slot]') || el).hidden = true; }
        draw(shown, got[2]);
      }).catch(function () { /* no badge, page unchanged */ });
    };

    // The starting variant: the theme's own data, or one request when it has none.
    var start = atLoad && bc && bc.product_attributes && variantOf(bc.product_attributes);
    badgesOf(productId).then(function (badges) {
      var ids = Object.keys(badges);
      var single = ids.length === 1 && ids[0];
      if (asked) { return; }  // the theme already said which variant is chosen
      if (!ids.length || (single && (!start || !form.querySelector('[data-product-attribute]')))) {
        self.choose(single || '');
      } else {
        self.choose(start ? (badges[start] || !single ? start : single) : null);
      }
    });

    // Without the theme's event (no Stencil theme script): one request per option change.
    if (!bc) {
      var timer = null;
      form.addEventListener('change', function (event) {
        if (!/^attribute\[/.test(event.target.name || '')) { return; }  // not the quantity
        clearTimeout(timer);
        timer = setTimeout(function () { self.choose(null); }, 100);
      });
    }
  }

  // Which form the theme's change belongs to: the form whose product has that variant, else the
  // one the shopper was using (a combination that does not exist has no variant).
  function owner(id) {
    forms = forms.filter(function (p) { return p.form.isConnected; });
    var mine = forms.filter(function (p) { return p.badges && id && p.badges[id]; });
    if (mine.length === 1) { return mine[0]; }
    if (touched && forms.indexOf(touched) !== -1) { return touched; }
    return mine[0] || (forms.length === 1 ? forms[0] : null);
  }

  document.addEventListener('onProductOptionsChanged', function (event) {
    var data = event.detail && event.detail.data;
    var id = variantOf(data);
    var product = owner(id);
    if (product) { product.choose(id); }
  });

  function touch(event) {
    var form = event.target.closest && event.target.closest('form[data-cart-item-add]');
    for (var i = 0; form && i < forms.length; i++) {
      if (forms[i].form === form) { touched = forms[i]; }
    }
  }
  ['pointerdown', 'keydown', 'focusin'].forEach(function (type) {
    document.addEventListener(type, touch, true);
  });

  // -- the cart page ------------------------------------------------------------------------

  var cartBadges = {};  // variant id -> badge, asked once each
  var cartSeen = null;

  function cartNotice(cart) {
    var notice = cart.querySelector('[data-backorder-cart]');
    if (!notice) {
      notice = document.createElement('div');
      notice.setAttribute('data-backorder-cart', '');
      notice.setAttribute('role', 'status');
      notice.setAttribute('aria-live', 'polite');
      notice.hidden = true;
      var content = cart.querySelector('[data-cart-content]');
      (content ? content.parentNode : cart).insertBefore(notice, content);
    }
    return notice;
  }

  var cartAsked = 0;
  function showCart(cart) {
    var notice = cartNotice(cart);
    var mine = ++cartAsked;
    json('/api/storefront/carts?include=lineItems.physicalItems.options', {
      credentials: 'same-origin'
    }).then(function (carts) {
      var lines = [];
      (carts || []).forEach(function (c) {
        lines = lines.concat(c.lineItems && c.lineItems.physicalItems || []);
      });
      var missing = lines.map(function (line) { return String(line.variantId); })
        .filter(function (id, at, all) { return !cartBadges[id] && all.indexOf(id) === at; });
      var asking = missing.length
        ? json(api + '&variants=' + missing.map(enc).join(',') + apiTail, { credentials: 'omit' })
        : null;
      return Promise.all([lines, asking, withRenderer()]);
    }).then(function (got) {
      var variants = got[1] && got[1].enabled !== false && got[1].variants || {};
      Object.keys(variants).forEach(function (id) { cartBadges[id] = variants[id]; });
      if (mine !== cartAsked) { return; }  // the cart changed again meanwhile
      var list = document.createElement('ul');
      got[0].forEach(function (line) {
        var badge = cartBadges[String(line.variantId)];
        if (!badge || badge.state !== 'backorder' || !got[2]) { return; }
        var item = document.createElement('li');
        var options = (line.options || []).map(function (o) { return o.value; }).join(' / ');
        var name = document.createElement('strong');
        name.textContent = line.quantity + ' \u00d7 ' + line.name + (options ? ' (' + options + ')' : '');
        var state = document.createElement('span');
        got[2](state, badge);
        item.appendChild(name);
        item.appendChild(document.createTextNode(' '));
        item.appendChild(state);
        list.appendChild(item);
      });
      notice.textContent = '';
      notice.appendChild(list);
      notice.hidden = !list.children.length;
    }).catch(function () { /* no notice, cart unchanged */ });
  }

  // -- finding forms and carts, at load and whenever the theme adds them ----------------------

  function scan(atLoad) {
    var found = document.querySelectorAll('form[data-cart-item-add]');
    for (var i = 0; i < found.length; i++) {
      var form = found[i];
      var input = form.querySelector('input[name="product_id"]');
      if (form.backorderBadge || !input || !input.value) { continue; }
      form.backorderBadge = new Product(form, input.value, atLoad && !forms.length);
      forms.push(form.backorderBadge);
    }
    var cart = document.querySelector('[data-cart]');
    var content = cart && cart.querySelector('[data-cart-content]');
    var seen = content && content.innerHTML;
    if (cart && seen !== cartSeen) {
      cartSeen = seen;
      showCart(cart);
    }
  }

  function start() {
    scan(true);
    var pending = false;
    new MutationObserver(function () {
      if (pending) { return; }
      pending = true;
      setTimeout(function () { pending = false; scan(false); }, 0);
    }).observe(document.body, { childList: true, subtree: true });
  }
  if (document.body) {
    start();
  } else {
    document.addEventListener('DOMContentLoaded', start);
  }
})();
