// Runs the fake's stand-in Stripe.js (fetched from GET /v3/, as a checkout page loads it) in Node with a tiny
// DOM, against the running fake. Plays a customer who types cards into the Payment Element and, when the
// 3-D Secure modal opens, loads the hosted page in it and presses a button. Prints one JSON result per step.
// Usage: node stripe_js_harness.js '<json: {base, key, steps: [...]}>'
"use strict";

const vm = require("vm");
const config = JSON.parse(process.argv[2]);

class Element {
  constructor(tag) {
    Object.assign(this, { tagName: tag, children: [], style: {}, attributes: {}, listeners: {}, parentNode: null });
    Object.assign(this, { textContent: "", value: "", name: "", className: "" });
  }
  appendChild(child) {
    child.parentNode = this;
    this.children.push(child);
    if (child.tagName === "div" && child.children.some((c) => c.tagName === "iframe")) openModal(child);
    return child;
  }
  removeChild(child) {
    this.children = this.children.filter((c) => c !== child);
    child.parentNode = null;
  }
  setAttribute(name, value) { this.attributes[name] = String(value); }
  addEventListener(type, handler) { (this.listeners[type] = this.listeners[type] || []).push(handler); }
  dispatch(type, event) {
    (this.listeners[type] || []).forEach((handler) => handler(event));
    if (this.parentNode) this.parentNode.dispatch(type, event);
  }
  focus() {}
  blur() {}
  find(predicate) {
    if (predicate(this)) return this;
    for (const child of this.children) {
      const found = child.find ? child.find(predicate) : null;
      if (found) return found;
    }
    return null;
  }
}

const windowListeners = {};
const assigned = [];
const body = new Element("body");
const container = new Element("div");
body.appendChild(container);
let answer = "complete";
const modals = { opened: 0, open: 0 };

global.document = {
  currentScript: { src: config.base + "/v3/" },
  createElement: (tag) => new Element(tag),
  createTextNode: (text) => ({ textContent: text }),
  querySelector: (selector) => (selector === "#payment-element" ? container : null),
  body,
  activeElement: null,
};
global.location = { href: "http://shop.test/checkout", origin: "http://shop.test", assign: (url) => assigned.push(url) };
global.window = global;
global.addEventListener = (type, handler) => (windowListeners[type] = windowListeners[type] || []).push(handler);
global.removeEventListener = (type, handler) => {
  windowListeners[type] = (windowListeners[type] || []).filter((h) => h !== handler);
};

// The customer in the modal: load the hosted page the iframe shows, press the button, and let the page's
// script post its message to the parent window.
async function openModal(overlay) {
  modals.opened += 1;
  modals.open += 1;
  const frame = overlay.children.find((c) => c.tagName === "iframe");
  const page = await (await fetch(frame.src)).text();
  const form = page.match(/<form method="post" action="([^"]+)">.*?name="client_secret" value="([^"]+)"/s);
  const action = new URL(form[1], frame.src).toString();
  const response = await fetch(action, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_secret: form[2], outcome: answer }).toString(),
    redirect: "manual",
  });
  const after = await response.text();
  const posted = after.match(/postMessage\((\{.*?\}), '\*'\)/);
  const event = { origin: new URL(frame.src).origin, data: JSON.parse(posted[1]) };
  (windowListeners.message || []).slice().forEach((handler) => handler(event));
  modals.open = body.children.filter((c) => c.attributes["data-fake-stripe"]).length;
}

function type(card) {
  const input = (name) => container.find((node) => node.tagName === "input" && node.name === name);
  input("number").value = card.number;
  input("expiry").value = card.expiry || "12 / 40";
  input("cvc").value = card.cvc || "123";
  input("cvc").dispatch("input", {});
}

function settleSoon(promise, ms) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve({ pending: true }), ms))]);
}

async function main() {
  const code = await (await fetch(config.base + "/v3/")).text();
  vm.runInThisContext(code, { filename: "stripe_v3.js" });
  const results = [];
  for (const step of config.steps) {
    answer = step.answer || "complete";
    try {
      if (step.do === "integration_error") {
        try {
          Stripe(step.key);
          results.push({ threw: null });
        } catch (error) {
          results.push({ threw: error.name });
        }
        continue;
      }
      const stripe = Stripe(config.key, step.apiBase ? { apiBase: step.apiBase } : undefined);
      if (step.do === "retrieve") {
        results.push(await stripe.retrievePaymentIntent(step.clientSecret));
        continue;
      }
      if (step.do === "handle_next_action") {
        results.push({ ...(await stripe.handleNextAction({ clientSecret: step.clientSecret })), modals: { ...modals } });
        continue;
      }
      container.children = [];
      const elements = stripe.elements({ clientSecret: step.clientSecret, appearance: { theme: "stripe" } });
      const payment = elements.create("payment");
      const events = [];
      payment.on("ready", () => events.push("ready"));
      payment.on("change", (e) => events.push(`change:${e.complete}`));
      payment.mount("#payment-element");
      await new Promise((resolve) => setTimeout(resolve, 0));
      type(step.card);
      const submitted = await elements.submit();
      if (submitted.error) {
        results.push({ submitted, events });
        continue;
      }
      const confirming = stripe.confirmPayment({
        elements,
        confirmParams: { return_url: step.returnUrl || "http://shop.test/done" },
        redirect: step.redirect || "if_required",
      });
      const result = await settleSoon(confirming, 3000);
      results.push({ submitted, events, ...result, modals: { ...modals }, assigned: assigned.slice() });
    } catch (error) {
      results.push({ threw: `${error.name}: ${error.message}` });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(String(error && error.stack));
    process.exit(1);
  }
);
