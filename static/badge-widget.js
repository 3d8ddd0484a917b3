/* Backorder Badges storefront widget.
 * Shows the selected variant's badge and ETA from the badge API, follows the option picker,
 * and (optionally) revalidates so a stock change shows without a reload. Text, not colour
 * alone, carries the state; everything from the API is set as text, never as HTML.
 * It also lends its renderer (window.BackorderBadges.render) to the platform scripts, such as
 * badge-widget-bc.js, so every storefront draws the badge the same way. After each render it
 * fires a bubbling `backorder-badge:change` event ({variant, badge}) for the notify-me form.
 */
(function () {
  'use strict';

  function render(el, badge) {
    el.textContent = '';
    if (!badge || !badge.state || badge.state === 'hidden') {
      el.hidden = true;
      el.removeAttribute('data-state');
      return;
    }
    el.hidden = false;
    el.setAttribute('data-state', badge.state);
    var pill = document.createElement('span');
    pill.className = 'bb-badge bb-badge--' + badge.state;
    pill.style.padding = '.2em .6em';
    pill.style.background = '#f6f8fa';
    pill.style.border = '1px solid #d0d7de';
    if (badge.color) {
      pill.style.borderLeft = '.4em solid ' + badge.color;
    }
    pill.style.borderRadius = '4px';
    pill.style.display = 'inline-block';
    el.appendChild(pill);

    var at = badge.state === 'backorder' && badge.eta && badge.eta_text
      ? badge.label.indexOf(badge.eta_text) : -1;
    if (at === -1) {
      pill.textContent = badge.label;
    } else {
      // The date inside the label becomes a machine-readable <time>, said once.
      pill.appendChild(document.createTextNode(badge.label.slice(0, at)));
      pill.appendChild(etaElement(badge));
      pill.appendChild(document.createTextNode(badge.label.slice(at + badge.eta_text.length)));
    }
    if (badge.state === 'backorder' && badge.eta && at === -1) {
      var line = document.createElement('span');
      line.style.display = 'block';
      line.style.fontSize = '.9em';
      line.appendChild(document.createTextNode('Estimated to ship by '));
      line.appendChild(etaElement(badge));
      el.appendChild(line);
    }
  }

  function etaElement(badge) {
    var eta = document.createElement('time');
    eta.className = 'bb-eta';
    eta.setAttribute('datetime', badge.eta);
    eta.textContent = badge.eta_text;
    return eta;
  }

  function init(el) {
    el.setAttribute('role', 'status');
    el.setAttribute('aria-live', 'polite');
    var select = el.dataset.variantSelect ? document.querySelector(el.dataset.variantSelect) : null;
    var badges = {};
    // The labels and the date come back in the shopper's language (when the store publishes it).
    var lang = el.dataset.locale || document.documentElement.lang;
    var url = el.dataset.api + '?shop=' + encodeURIComponent(el.dataset.shop) +
      '&product=' + encodeURIComponent(el.dataset.product) +
      (lang ? '&locale=' + encodeURIComponent(lang) : '');

    function current() {
      var id = select ? select.value : el.dataset.variant;
      render(el, badges[id]);
      // The page's other parts (the notify-me form) follow the badge without asking again.
      el.dispatchEvent(new CustomEvent('backorder-badge:change', {
        bubbles: true,
        detail: { variant: id, badge: badges[id] || null }
      }));
    }

    function load() {
      return fetch(url, { cache: 'no-cache', credentials: 'omit' })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data && data.variants) { badges = data.variants; }
          current();
        })
        .catch(function () { /* the page stays usable without a badge */ });
    }

    if (select) { select.addEventListener('change', current); }
    load();
    var every = parseInt(el.dataset.pollSeconds || '0', 10);
    if (every > 0) { setInterval(load, every * 1000); }
  }

  window.BackorderBadges = window.BackorderBadges || { render: render };

  function start() {
    // Only containers that say where the badge API is; platform scripts drive their own.
    var nodes = document.querySelectorAll('#backorder-badge[data-api], [data-backorder-badge][data-api]');
    for (var i = 0; i < nodes.length; i++) { init(nodes[i]); }
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
