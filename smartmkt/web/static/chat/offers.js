/* The customer's personal offers on the product cards: which offer goes with which product, the
 * price line (the regular price struck through next to the offer price) and the offer badge. */
"use strict";

window.smartmktChat.offers = (function () {
  const { node, hidden } = window.smartmktChat.dom;

  function money(amount, currency) {
    const value = Number(amount);
    if (!Number.isFinite(value)) return "";
    try {
      return new Intl.NumberFormat("en-US", { style: "currency", currency: currency || "USD" }).format(value);
    } catch (_err) {
      return value.toFixed(2) + " " + (currency || "");
    }
  }
  function day(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso || "");
    return d.toLocaleDateString("en-US", { month: "short", day: "numeric" });
  }

  /* The offers a bot message carries: one (``offer``) or a list (``offers``, which wins). */
  function offersIn(custom) {
    let offers = [];
    if (custom.offer) offers = [custom.offer];
    if (Array.isArray(custom.offers)) offers = custom.offers;
    return offers;
  }
  function offerFor(offers, product) {
    return offers.find((o) => o && Number(o.product_id) === Number(product.id)) || null;
  }
  function hasOffer(product, offer) {
    return Boolean(offer && Number(offer.product_id) === Number(product.id));
  }

  function priceLine(product, offer) {
    const price = node("p", "card-price");
    if (hasOffer(product, offer)) {
      price.appendChild(hidden("Regular price "));
      price.appendChild(node("s", "old-price", money(product.price, product.currency)));
      price.appendChild(hidden(", your price "));
      price.appendChild(node("strong", "offer-price", " " + money(offer.offer_price, product.currency)));
    } else {
      price.appendChild(hidden("Price "));
      price.appendChild(node("strong", null, money(product.price, product.currency)));
    }
    return price;
  }
  function badge(offer) {
    const line = node("p", "badge");
    line.appendChild(node("span", "badge-off", String(offer.percent_off) + "% off"));
    line.appendChild(node("span", "badge-until", " until " + day(offer.expires_at)));
    return line;
  }

  return { offersIn, offerFor, hasOffer, priceLine, badge };
})();
