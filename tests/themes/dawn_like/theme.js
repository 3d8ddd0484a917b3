/*
 * A Dawn-like theme for the storefront tests: written for this project (not Dawn's code), it
 * behaves as /work/shared/storefront-facts.md describes Dawn 15.4.1:
 * - a pub/sub with global subscribe/publish and PUB_SUB_EVENTS;
 * - <variant-selects> (pills and dropdowns) publishes the chosen option value ids;
 * - <product-info> fetches `{url}?section_id=<section>&option_values=<ids>`, replaces only the
 *   <variant-selects> node, calls history.replaceState with ?variant=<id> (none for a
 *   combination that does not exist), sets the id input of the product form AND of the
 *   installment form with a bubbling change, copies the price and the button, then publishes
 *   variantChange with the parsed section; app blocks are not re-rendered;
 * - <product-form> adds to the cart through /cart/add.js with `sections`, publishes cartUpdate,
 *   then re-renders the cart drawer's inner HTML and opens it;
 * - <cart-items> (cart page) changes quantities through /cart/change.js, re-renders the items
 *   and the footer totals (`.js-contents`), then publishes cartUpdate.
 */
let subscribers = {};

function subscribe(eventName, callback) {
  subscribers[eventName] = (subscribers[eventName] || []).concat([callback]);
  return function unsubscribe() {
    subscribers[eventName] = subscribers[eventName].filter((cb) => cb !== callback);
  };
}

function publish(eventName, data) {
  return Promise.all((subscribers[eventName] || []).map((callback) => callback(data)));
}

const PUB_SUB_EVENTS = {
  cartUpdate: 'cart-update',
  optionValueSelectionChange: 'option-value-selection-change',
  variantChange: 'variant-change',
};

function parse(text) {
  return new DOMParser().parseFromString(text, 'text/html');
}

class VariantSelects extends HTMLElement {
  connectedCallback() {
    this.addEventListener('change', (event) => {
      const ids = Array.from(this.querySelectorAll('fieldset input:checked, select')).map((el) =>
        el.tagName === 'SELECT' ? el.selectedOptions[0].dataset.optionValueId : el.dataset.optionValueId
      );
      publish(PUB_SUB_EVENTS.optionValueSelectionChange, {
        data: { event, target: event.target, selectedOptionValues: ids },
      });
    });
  }
}

class ProductInfo extends HTMLElement {
  connectedCallback() {
    this.unsubscribe = subscribe(PUB_SUB_EVENTS.optionValueSelectionChange, (event) =>
      this.onOptionChange(event.data)
    );
  }

  disconnectedCallback() {
    this.unsubscribe();
  }

  onOptionChange({ target, selectedOptionValues }) {
    if (!this.contains(target)) return;
    const section = this.dataset.section;
    const url = `${this.dataset.url}?section_id=${section}&option_values=${selectedOptionValues.join(',')}`;
    const focused = document.activeElement && document.activeElement.id;
    fetch(url)
      .then((response) => response.text())
      .then((text) => {
        const html = parse(text);
        const variant = JSON.parse(html.querySelector('variant-selects [data-selected-variant]').textContent);
        this.querySelector('variant-selects').replaceWith(document.importNode(html.querySelector('variant-selects'), true));
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        window.history.replaceState({}, '', `${this.dataset.url}${variant ? `?variant=${variant.id}` : ''}`);
        this.querySelectorAll(`#product-form-${section}, #product-form-installment-${section}`).forEach((form) => {
          const input = form.querySelector('input[name="id"]');
          input.value = variant ? variant.id : '';
          input.dispatchEvent(new Event('change', { bubbles: true }));
        });
        const button = this.querySelector(`#ProductSubmitButton-${section}`);
        if (!variant) {
          button.disabled = true;
          button.querySelector('span').textContent = 'Unavailable';
          return;
        }
        this.querySelector(`#price-${section}`).innerHTML = html.getElementById(`price-${section}`).innerHTML;
        const next = html.getElementById(`ProductSubmitButton-${section}`);
        button.disabled = next.hasAttribute('disabled');
        button.querySelector('span').textContent = next.textContent.trim();
        publish(PUB_SUB_EVENTS.variantChange, { data: { sectionId: section, html, variant } });
      });
  }
}

class ProductForm extends HTMLElement {
  connectedCallback() {
    this.querySelector('form').addEventListener('submit', (event) => {
      event.preventDefault();
      const body = new FormData(event.target);
      body.append('sections', 'cart-drawer,cart-icon-bubble');
      fetch('/cart/add.js', { method: 'POST', body, headers: { 'X-Requested-With': 'XMLHttpRequest' } })
        .then((response) => response.json())
        .then((response) => {
          publish(PUB_SUB_EVENTS.cartUpdate, {
            source: 'product-form',
            productVariantId: body.get('id'),
            cartData: response,
          });
          document.querySelector('cart-drawer').renderContents(response);
        });
    });
  }
}

class CartDrawer extends HTMLElement {
  renderContents(response) {
    const html = parse(response.sections['cart-drawer']);
    this.querySelector('.drawer__inner').innerHTML = html.querySelector('.drawer__inner').innerHTML;
    document.getElementById('cart-icon-bubble').innerHTML = parse(response.sections['cart-icon-bubble'])
      .querySelector('.shopify-section').innerHTML;
    this.classList.add('active');
  }
}

class CartItems extends HTMLElement {
  connectedCallback() {
    this.addEventListener('change', (event) => {
      if (event.target.name === 'updates[]') this.update(event.target.dataset.index, event.target.value);
    });
    this.addEventListener('click', (event) => {
      const remove = event.target.closest('[data-remove]');
      if (remove) this.update(remove.dataset.index, 0);
    });
  }

  update(line, quantity) {
    const sections = ['main-cart-items', 'main-cart-footer'];
    fetch('/cart/change.js', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ line: Number(line), quantity: Number(quantity), sections }),
    })
      .then((response) => response.json())
      .then((state) => {
        sections.forEach((id) => {
          document.getElementById(id).querySelector('.js-contents').innerHTML = parse(state.sections[id])
            .querySelector('.js-contents').innerHTML;
        });
        publish(PUB_SUB_EVENTS.cartUpdate, { source: 'cart-items', cartData: state });
      });
  }
}

customElements.define('variant-selects', VariantSelects);
customElements.define('product-info', ProductInfo);
customElements.define('product-form', ProductForm);
customElements.define('cart-drawer', CartDrawer);
customElements.define('cart-items', CartItems);
