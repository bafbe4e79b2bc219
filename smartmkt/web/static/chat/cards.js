/* Product cards: a bot message's custom payload (``products`` or ``product``, with the offers
 * offers.js reads) as a list of cards, each with the buttons that buy the title, ask for more like
 * it or decline it (Rasa ``/intent{...}`` payloads).
 *
 * With a shop connected, "buy" answers a ``checkout`` payload: one card with the discount code
 * (and a button that copies it) and a link to the product's page on the shop's site. */
"use strict";

window.smartmktChat.cards = (function () {
  const { node, quickButton } = window.smartmktChat.dom;
  const offers = window.smartmktChat.offers;

  function shortcut(intent, entities) {
    return "/" + intent + (entities ? JSON.stringify(entities) : "");
  }

  function productCard(product, offer, index, groupId) {
    const title = String(product.title || "");
    const card = node("li", "card");
    const titleId = groupId + "-t" + index;
    card.setAttribute("aria-labelledby", titleId);
    const heading = node("h3", "card-title", title);
    heading.id = titleId;
    card.appendChild(heading);
    const details = [];
    if (product.year) details.push(String(product.year));
    if (Array.isArray(product.genres) && product.genres.length) details.push(product.genres.join(", "));
    if (details.length) card.appendChild(node("p", "card-meta", details.join(" · ")));

    card.appendChild(offers.priceLine(product, offer));
    if (offers.hasOffer(product, offer)) {
      card.classList.add("has-offer");
      card.appendChild(offers.badge(offer));
    }

    const actions = node("div", "card-actions");
    actions.setAttribute("role", "group");
    actions.setAttribute("aria-label", "Choices for " + title);
    actions.appendChild(
      // "Buy", not "Add to cart": there is no cart, the bot orders the title at once
      quickButton("Buy", title, shortcut("purchase", { product: title }), "Buy: " + title)
    );
    actions.appendChild(
      quickButton(
        "Show more like this",
        title,
        shortcut("ask_recommendation", { product: title }),
        "Show more like " + title
      )
    );
    // names its title, so it declines that card's offer only, not every offer listed
    actions.appendChild(quickButton("No thanks", title, shortcut("deny", { product: title }), "No thanks"));
    card.appendChild(actions);
    return card;
  }

  /* Where the shopper buys on the shop's site: the product, the offer's code, the shop's page. */
  function checkoutCard(custom, groupId) {
    const product = custom.product;
    const offer = custom.offer && custom.offer.code ? custom.offer : null;
    const card = node("li", "card checkout");
    const heading = node("h3", "card-title", String(product.title || ""));
    heading.id = groupId + "-t0";
    card.setAttribute("aria-labelledby", heading.id);
    card.appendChild(heading);
    card.appendChild(offers.priceLine(product, offer));
    if (offer) {
      card.classList.add("has-offer");
      card.appendChild(offers.badge(offer));
      const line = node("p", "code-line", "Code ");
      line.appendChild(node("code", "offer-code", String(offer.code)));
      const copy = node("button", "copy-code", "Copy code");
      copy.type = "button";
      copy.addEventListener("click", () => {
        const done = () => (copy.textContent = "Copied");
        const failed = () => (copy.textContent = "Select the code to copy it");
        if (navigator.clipboard) navigator.clipboard.writeText(String(offer.code)).then(done, failed);
        else failed();
      });
      line.appendChild(copy);
      card.appendChild(line);
    }
    if (/^https?:\/\//.test(String(custom.url || ""))) {
      const link = node("a", "shop-link", offer ? "Buy it on the shop" : "See it on the shop");
      link.href = String(custom.url);
      card.appendChild(link);
    }
    return card;
  }

  let groupCounter = 0;
  /* The cards of one custom payload, or null when it shows none. */
  function cards(custom) {
    if (custom.type === "order") return null; // the reply's text confirms the order
    if (custom.type === "checkout" && !(custom.product && typeof custom.product === "object")) return null;
    const products = Array.isArray(custom.products) ? custom.products : custom.product ? [custom.product] : [];
    if (!products.length) return null;
    const listed = offers.offersIn(custom);
    const groupId = "cards-" + Date.now().toString(36) + "-" + groupCounter++;
    const section = node("section", "recs");
    section.setAttribute("aria-label", products.length === 1 ? "Product" : products.length + " products");
    const list = node("ul", "cards");
    if (custom.type === "checkout") list.appendChild(checkoutCard(custom, groupId));
    else
      products.forEach((product, i) => {
        list.appendChild(productCard(product, offers.offerFor(listed, product), i, groupId));
      });
    section.appendChild(list);
    return section;
  }

  return { cards };
})();
