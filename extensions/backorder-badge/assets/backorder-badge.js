/*
 * Keeps each backorder badge on the selected variant. Every variant's badge is already in the
 * page (a JSON script next to the badge), so switching variants calls nothing.
 */
(function () {
  'use strict';

  function variantsOf(productId) {
    var script = document.querySelector('script[data-backorder-badge-variants="' + productId + '"]');
    if (!script) return {};
    try {
      return JSON.parse(script.textContent) || {};
    } catch (error) {
      return {};
    }
  }

  function productForm(badge) {
    var scope = badge.closest('.shopify-section, section, main') || document;
    return scope.querySelector('form[action*="/cart/add"]') || document.querySelector('form[action*="/cart/add"]');
  }

  function selectedVariantId(form) {
    var input = form && form.querySelector('[name="id"]');
    if (input && input.value) return String(input.value);
    return new URL(window.location.href).searchParams.get('variant');
  }

  function show(badge, entry) {
    var hide = !entry || !entry.label || entry.state === 'hidden' ||
      (entry.state === 'in_stock' && badge.dataset.showInStock === 'false');
    badge.dataset.state = entry ? entry.state : '';
    var label = badge.querySelector('.backorder-badge__label');
    if (label) label.textContent = entry ? entry.label : '';
    badge.hidden = hide;
  }

  function update() {
    var badges = document.querySelectorAll('[data-backorder-badge]');
    Array.prototype.forEach.call(badges, function (badge) {
      var variants = variantsOf(badge.dataset.productId);
      var id = selectedVariantId(productForm(badge));
      if (id && Object.prototype.hasOwnProperty.call(variants, id)) show(badge, variants[id]);
    });
  }

  function placeEmbeds() {
    var embeds = document.querySelectorAll('[data-backorder-badge-embed]');
    Array.prototype.forEach.call(embeds, function (embed) {
      if (document.querySelector('.shopify-app-block [data-backorder-badge]')) {
        embed.remove(); // the theme already shows the app block
        return;
      }
      var form = document.querySelector('form[action*="/cart/add"]');
      var button = form && form.querySelector('[type="submit"]');
      if (button && button.parentNode) button.parentNode.insertBefore(embed, button);
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
