/*
 * The example checkout page, served by web/merchant.py. The merchant's server prices the cart and starts the
 * payment; Stripe.js's Payment Element confirms the PaymentIntent here, 3-D Secure included; the order's status,
 * as the payment workflow reports it, says how it ended. After a decline the customer pays the same
 * PaymentIntent with another card, once the workflow has counted the failed attempt (docs/checkout.md).
 * GET /config names the Stripe.js and the publishable key: Stripe's own, or the local stack's stand-in.
 */
"use strict";

const POLL_MS = 500;
const WAIT_MS = 60000;
const page = {
  cart: document.getElementById("cart"),
  pay: document.getElementById("pay"),
  message: document.getElementById("message"),
};

function say(text, kind = "info") {
  page.message.textContent = text;
  page.message.className = kind;
}

// What the customer is told once the order has ended; null while it is still going.
function outcome(order) {
  switch (order.status) {
    case "fulfilled": return ["paid", "Paid: order fulfilled. Your receipt is on its way."];
    case "failed": return ["error", `Payment failed: ${order.lastFailure || "the payment did not go through"}`];
    case "timed_out": return ["error", "Payment timed out: the order was cancelled and nothing was charged."];
    case "canceled": return ["error", "Payment canceled: nothing was charged."];
    case "refunded": return ["error", "Refunded: we could not fulfil the order and refunded your payment in full."];
    case "needs_attention": return ["info", "We are checking your payment and will e-mail you about your order."];
    default: return null;
  }
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (answer.error && answer.error.message) || `The shop answered ${response.status}.`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return answer;
}

// The order's status once `ready(order)` holds. Until the workflow has accepted the order the shop answers 404;
// a 5xx or a lost connection is worth another look too.
async function waitFor(orderId, ready) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    let order = null;
    try {
      order = await call("GET", `/checkout/${encodeURIComponent(orderId)}`);
    } catch (error) {
      if (error.status && error.status !== 404 && error.status < 500) throw error;
    }
    if (order && ready(order)) return order;
    if (Date.now() > deadline) {
      throw new Error("This is taking longer than it should. Reload the page to see where your order stands.");
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function money(amount, currency) {
  const format = new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() });
  return format.format(amount / 10 ** format.resolvedOptions().maximumFractionDigits);
}

function pageUrl(orderId) {
  return `${location.origin}${location.pathname}?orderId=${encodeURIComponent(orderId)}`;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = Object.assign(document.createElement("script"), { src });
    script.onload = resolve;
    script.onerror = () => reject(new Error(`Could not load Stripe.js from ${src}.`));
    document.head.append(script);
  });
}

function finish(order) {
  page.pay.hidden = true;
  const [kind, text] = outcome(order);
  say(text, kind);
}

function showCart(stripe, config) {
  const lines = document.getElementById("cart-lines");
  const quantities = config.products.map((product) => {
    const row = lines.insertRow();
    row.insertCell().textContent = product.name;
    const input = Object.assign(document.createElement("input"), { type: "number", min: 0, max: 10, value: 1 });
    input.setAttribute("aria-label", `How many: ${product.name}`);
    row.insertCell().append(input);
    const price = row.insertCell();
    price.className = "amount";
    price.textContent = money(product.unitAmount, config.currency);
    return { product, input };
  });
  const showTotal = () => {
    const total = quantities.reduce((sum, { product, input }) => sum + product.unitAmount * (Number(input.value) || 0), 0);
    document.getElementById("cart-total").textContent = money(total, config.currency);
  };
  showTotal();
  page.cart.addEventListener("input", showTotal);
  page.cart.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = page.cart.querySelector("button");
    button.disabled = true;
    say("Starting your payment…");
    const items = quantities
      .filter(({ input }) => Number(input.value) > 0)
      .map(({ product, input }) => ({ sku: product.sku, quantity: Number(input.value) }));
    let order;
    try {
      order = await call("POST", "/checkout", { email: page.cart.elements.email.value, items });
    } catch (error) {
      say(error.message, "error");
      button.disabled = false;
      return;
    }
    page.cart.hidden = true;
    history.replaceState(null, "", pageUrl(order.orderId));
    await pay(stripe, order.orderId).catch((error) => say(error.message, "error"));
  });
  page.cart.hidden = false;
}

// Resolves when the customer presses the pay form's button, labelled `label`.
function submitted(label) {
  const button = page.pay.querySelector("button");
  button.textContent = label;
  button.disabled = false;
  return new Promise((resolve) => {
    page.pay.addEventListener("submit", (event) => {
      event.preventDefault();
      button.disabled = true;
      say("Confirming your payment…");
      resolve();
    }, { once: true });
  });
}

async function pay(stripe, orderId) {
  say("Preparing your payment…");
  let order = await waitFor(orderId, (o) => outcome(o) || o.clientSecret);
  document.getElementById("order-id").textContent = orderId;
  document.getElementById("order-total").textContent = money(order.amount, order.currency);
  document.getElementById("order").hidden = false;
  if (outcome(order)) return finish(order);

  const elements = stripe.elements({ clientSecret: order.clientSecret, appearance: { theme: "stripe" } });
  const card = elements.create("payment");
  card.mount("#payment-element");
  page.pay.hidden = false;
  let notice = order.lastFailure ? `Your last payment did not go through (${order.lastFailure}). Try another card.` : "";
  for (;;) {
    // Confirmed by the shop's server (a card it had), and the bank asks the customer: Stripe.js shows the bank's
    // page. Otherwise the customer pays with the card in the Payment Element.
    const authenticate = order.paymentStatus === "requires_action";
    document.getElementById("payment-element").hidden = authenticate;
    say(authenticate ? "Your bank asks you to confirm this payment." : notice, authenticate ? "info" : "error");
    await submitted(authenticate ? "Confirm with your bank" : `Pay ${money(order.amount, order.currency)}`);
    const { error } = authenticate
      ? await stripe.handleNextAction({ clientSecret: order.clientSecret })
      : await stripe.confirmPayment({ elements, confirmParams: { return_url: pageUrl(orderId) }, redirect: "if_required" });
    if (!error) break;
    if (!error.payment_intent) {  // nothing reached the bank: a mistyped card, or no connection
      notice = error.message;
      continue;
    }
    // Declined, or 3-D Secure failed: the workflow counts the attempt, then the PaymentIntent takes another card.
    const reason = error.code === "payment_intent_authentication_failure"
      ? "Your bank could not confirm the payment (3-D Secure failed)."
      : error.message || "Your payment did not go through.";
    say(`${reason} One moment…`, "error");
    const failedAttempt = order.attempt;
    order = await waitFor(orderId, (o) => outcome(o) || (o.clientSecret && o.attempt > failedAttempt));
    if (outcome(order)) return finish(order);
    card.clear();
    notice = `${reason} Try another card.`;
  }
  page.pay.hidden = true;
  say("Payment sent. Waiting for the shop to confirm your order…");
  finish(await waitFor(orderId, outcome));
}

async function main() {
  const orderId = new URLSearchParams(location.search).get("orderId");
  // Stripe returns from a redirect with the PaymentIntent's client_secret in the URL: keep it out of the history.
  if (orderId) history.replaceState(null, "", pageUrl(orderId));
  const config = await call("GET", "/config");
  await loadScript(config.stripeJsUrl);
  const stripe = Stripe(config.publishableKey);
  await (orderId ? pay(stripe, orderId) : showCart(stripe, config));
}

main().catch((error) => say(error.message, "error"));
