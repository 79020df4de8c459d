/*
 * A stand-in for Stripe.js v3, served by the local fake Stripe at GET /v3/ (local_runtime/fake_stripe).
 * No dependencies, no requests anywhere but the fake. It implements the part of Stripe.js that a checkout
 * page using the Payment Element needs, with Stripe.js's signatures and result shapes
 * (https://docs.stripe.com/js):
 *
 *   var stripe = Stripe("pk_test_local", {apiBase: "http://127.0.0.1:12111"});  // apiBase: fake only;
 *                                                 // default: the origin this script was served from
 *   var elements = stripe.elements({clientSecret: clientSecret, appearance: {theme: "stripe"}});
 *   var payment = elements.create("payment");     // card number, expiry and CVC, plain inputs
 *   payment.mount("#payment-element");
 *   var submitted = await elements.submit();      // {selectedPaymentMethod: "card"} or {error}
 *   var result = await stripe.confirmPayment({elements: elements,
 *       confirmParams: {return_url: "https://shop.example/done"}, redirect: "if_required"});
 *   // result: {paymentIntent} or {error: {type, code, decline_code, message, payment_intent}}
 *   await stripe.retrievePaymentIntent(clientSecret);       // {paymentIntent} or {error}
 *   await stripe.handleNextAction({clientSecret: clientSecret});  // {paymentIntent} or {error}
 *
 * 3-D Secure opens the fake's hosted test page in a modal iframe, as Stripe's test mode does, and resolves
 * when the customer presses "Complete" or "Fail". A card the customer types is sent as
 * payment_method_data on the confirm call, with the publishable key as the `key` parameter.
 */
(function (global) {
  "use strict";

  var script = document.currentScript;
  var servedFrom = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var COMPLETE_MESSAGE = "fake-stripe:3ds-complete";

  function integrationError(message) {
    var error = new Error(message);
    error.name = "IntegrationError";
    return error;
  }

  function encode(params, prefix, pairs) {
    pairs = pairs || [];
    Object.keys(params).forEach(function (name) {
      var value = params[name];
      var key = prefix ? prefix + "[" + name + "]" : name;
      if (value === undefined || value === null) return;
      if (typeof value === "object") {
        encode(value, key, pairs);
      } else {
        pairs.push(encodeURIComponent(key) + "=" + encodeURIComponent(String(value)));
      }
    });
    return pairs.join("&");
  }

  function intentId(clientSecret) {
    if (typeof clientSecret !== "string" || clientSecret.indexOf("_secret_") < 1) {
      throw integrationError("Invalid value for clientSecret: expected a PaymentIntent client secret.");
    }
    return clientSecret.split("_secret_")[0];
  }

  function luhnOk(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = Number(digits.charAt(digits.length - 1 - i));
      if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
      sum += d;
    }
    return sum % 10 === 0;
  }

  function validationError(code, message) {
    return { type: "validation_error", code: code, message: message };
  }

  // ------------------------------------------------------------------ the Payment Element
  var FIELDS = [
    { name: "number", label: "Card number", placeholder: "1234 1234 1234 1234", autocomplete: "cc-number" },
    { name: "expiry", label: "Expiration date", placeholder: "MM / YY", autocomplete: "cc-exp" },
    { name: "cvc", label: "Security code", placeholder: "CVC", autocomplete: "cc-csc" },
  ];

  function readCard(inputs) {
    var number = inputs.number.value.replace(/[\s-]/g, "");
    var expiry = inputs.expiry.value.replace(/\s/g, "").match(/^(\d{1,2})\/(\d{2}|\d{4})$/);
    var cvc = inputs.cvc.value.trim();
    if (!/^\d{12,19}$/.test(number)) return { error: validationError("incomplete_number", "Your card number is incomplete.") };
    if (!luhnOk(number)) return { error: validationError("invalid_number", "Your card number is invalid.") };
    if (!expiry) return { error: validationError("incomplete_expiry", "Your card's expiration date is incomplete.") };
    var month = Number(expiry[1]);
    var year = Number(expiry[2].length === 2 ? "20" + expiry[2] : expiry[2]);
    var now = new Date();
    if (month < 1 || month > 12) return { error: validationError("invalid_expiry_month", "Your card's expiration date is invalid.") };
    if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
      return { error: validationError("invalid_expiry_year_past", "Your card's expiration year is in the past.") };
    }
    if (!/^\d{3,4}$/.test(cvc)) return { error: validationError("incomplete_cvc", "Your card's security code is incomplete.") };
    return { card: { number: number, exp_month: month, exp_year: year, cvc: cvc } };
  }

  function createPaymentElement(state) {
    var handlers = {};
    var root = null;
    var inputs = null;
    var message = null;

    function emit(event, payload) {
      (handlers[event] || []).forEach(function (handler) { handler(payload); });
    }

    function style(node, css) {
      Object.keys(css).forEach(function (property) { if (css[property]) node.style[property] = css[property]; });
    }

    var element = {
      mount: function (target) {
        var node = typeof target === "string" ? document.querySelector(target) : target;
        if (!node) throw integrationError("The selector you specified (" + target + ") applies to no DOM elements that are currently on the page.");
        var variables = (state.appearance && state.appearance.variables) || {};
        root = document.createElement("div");
        root.className = "FakeStripeElement FakeStripeElement--payment";
        style(root, { fontFamily: variables.fontFamily, color: variables.colorText });
        inputs = {};
        FIELDS.forEach(function (field) {
          var label = document.createElement("label");
          label.style.display = "block";
          label.style.marginBottom = "0.5rem";
          label.appendChild(document.createTextNode(field.label));
          var input = document.createElement("input");
          input.name = field.name;
          input.placeholder = field.placeholder;
          input.autocomplete = field.autocomplete;
          input.inputMode = "numeric";
          input.setAttribute("data-elements-stable-field-name", field.name);
          style(input, {
            display: "block", width: "100%", boxSizing: "border-box", padding: "0.5rem",
            border: "1px solid #ccc", borderRadius: variables.borderRadius || "4px",
            background: variables.colorBackground,
          });
          label.appendChild(input);
          root.appendChild(label);
          inputs[field.name] = input;
        });
        message = document.createElement("div");
        message.setAttribute("role", "alert");
        style(message, { color: variables.colorDanger || "#df1b41", minHeight: "1.2em" });
        root.appendChild(message);
        root.addEventListener("input", function () {
          var read = readCard(inputs);
          var empty = FIELDS.every(function (field) { return !inputs[field.name].value; });
          message.textContent = "";
          emit("change", { elementType: "payment", empty: empty, complete: !read.error, collapsed: false, value: { type: "card" } });
        });
        node.appendChild(root);
        setTimeout(function () { emit("ready", { elementType: "payment" }); }, 0);
      },
      unmount: function () { if (root && root.parentNode) root.parentNode.removeChild(root); },
      destroy: function () { element.unmount(); state.payment = null; },
      clear: function () { if (inputs) FIELDS.forEach(function (field) { inputs[field.name].value = ""; }); },
      focus: function () { if (inputs) inputs.number.focus(); },
      blur: function () { if (inputs && document.activeElement) document.activeElement.blur(); },
      update: function () {},
      on: function (event, handler) { (handlers[event] = handlers[event] || []).push(handler); return element; },
      off: function (event, handler) {
        handlers[event] = (handlers[event] || []).filter(function (h) { return handler && h !== handler; });
        return element;
      },
    };
    state.readCard = function () {
      if (!inputs) return { error: validationError("incomplete", "The Payment Element is not mounted.") };
      var read = readCard(inputs);
      message.textContent = read.error ? read.error.message : "";
      return read;
    };
    return element;
  }

  function createElements(options) {
    var state = { clientSecret: options.clientSecret, appearance: options.appearance || {}, payment: null };
    var elements = {
      create: function (type) {
        if (type !== "payment") throw integrationError("This stand-in Stripe.js creates only the 'payment' Element, not '" + type + "'.");
        if (state.payment) throw integrationError("Can only create one Element of type payment.");
        state.payment = createPaymentElement(state);
        return state.payment;
      },
      getElement: function (type) { return type === "payment" ? state.payment : null; },
      update: function (update) { if (update && update.appearance) state.appearance = update.appearance; },
      fetchUpdates: function () { return Promise.resolve({}); },
      submit: function () {
        if (!state.payment) return Promise.resolve({ error: validationError("incomplete", "Create and mount a Payment Element first.") });
        var read = state.readCard();
        return Promise.resolve(read.error ? { error: read.error } : { selectedPaymentMethod: "card" });
      },
    };
    Object.defineProperty(elements, "_state", { value: state });
    return elements;
  }

  // ------------------------------------------------------------------ 3-D Secure in a modal
  function showChallenge(url) {
    return new Promise(function (resolve) {
      var overlay = document.createElement("div");
      overlay.setAttribute("data-fake-stripe", "three-d-secure");
      overlay.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,.5);display:flex;" +
        "align-items:center;justify-content:center;z-index:2147483647";
      var frame = document.createElement("iframe");
      frame.name = "fake-stripe-three-d-secure";
      frame.title = "3D Secure";
      frame.src = url;
      frame.style.cssText = "width:min(500px,95vw);height:min(600px,90vh);border:0;background:#fff;border-radius:8px";
      overlay.appendChild(frame);
      document.body.appendChild(overlay);
      var origin = new URL(url, location.href).origin;
      function answered(event) {
        if (event.origin !== origin || !event.data || event.data.type !== COMPLETE_MESSAGE) return;
        window.removeEventListener("message", answered);
        overlay.parentNode.removeChild(overlay);
        resolve();
      }
      window.addEventListener("message", answered);
    });
  }

  function redirectQuery(returnUrl, paymentIntent) {
    // A card held for manual capture (requires_capture) is a successful confirmation too.
    var status = { succeeded: "succeeded", requires_capture: "succeeded", processing: "processing" }[paymentIntent.status] || "failed";
    var query = encode({
      payment_intent: paymentIntent.id,
      payment_intent_client_secret: paymentIntent.client_secret,
      redirect_status: status,
    });
    return returnUrl + (returnUrl.indexOf("?") < 0 ? "?" : "&") + query;
  }

  // ------------------------------------------------------------------ Stripe()
  function Stripe(publishableKey, options) {
    if (typeof publishableKey !== "string" || publishableKey.indexOf("pk_") !== 0) {
      throw integrationError("Invalid value for Stripe(): apiKey should be a publishable key (pk_...). You specified: " + publishableKey + ".");
    }
    var apiBase = String((options && options.apiBase) || servedFrom).replace(/\/+$/, "");

    function call(method, path, params) {
      var body = encode(Object.assign({ key: publishableKey }, params));
      var init = { method: method };
      if (method === "POST") {
        init.headers = { "Content-Type": "application/x-www-form-urlencoded" };
        init.body = body;
      }
      return fetch(apiBase + path + (method === "GET" ? "?" + body : ""), init).then(
        function (response) {
          return response.json().then(function (json) { return response.ok ? { object: json } : { error: json.error }; });
        },
        function (reason) { return { error: { type: "api_connection_error", message: "Could not reach Stripe: " + reason } }; }
      );
    }

    function retrievePaymentIntent(clientSecret) {
      return call("GET", "/v1/payment_intents/" + intentId(clientSecret), { client_secret: clientSecret }).then(
        function (r) { return r.error ? { error: r.error } : { paymentIntent: r.object }; }
      );
    }

    function outcomeAfterAction(clientSecret) {
      return retrievePaymentIntent(clientSecret).then(function (r) {
        var pi = r.paymentIntent;
        if (pi && pi.status === "requires_payment_method" && pi.last_payment_error) {
          return { error: Object.assign({}, pi.last_payment_error, { payment_intent: pi }) };
        }
        return r;
      });
    }

    function act(clientSecret, paymentIntent) {
      var action = paymentIntent.next_action || {};
      if (action.type === "redirect_to_url") {
        window.location.assign(action.redirect_to_url.url);
        return new Promise(function () {});
      }
      if (action.type !== "use_stripe_sdk") {
        return Promise.resolve({ error: { type: "invalid_request_error", message: "Unsupported next_action: " + action.type } });
      }
      return showChallenge(action.use_stripe_sdk.stripe_js).then(function () { return outcomeAfterAction(clientSecret); });
    }

    function confirmPayment(options) {
      options = options || {};
      var state = options.elements && options.elements._state;
      var clientSecret = options.clientSecret || (state && state.clientSecret);
      var confirmParams = Object.assign({}, options.confirmParams || {});
      var redirect = options.redirect || "always";
      if (!clientSecret) return Promise.reject(integrationError("stripe.confirmPayment(): pass a clientSecret here or to stripe.elements()."));
      if (redirect !== "if_required" && !confirmParams.return_url) {
        return Promise.reject(integrationError("stripe.confirmPayment(): the `confirmParams.return_url` argument is required unless passing `redirect: 'if_required'`."));
      }
      var params = Object.assign(confirmParams, { client_secret: clientSecret, use_stripe_sdk: true });
      if (!params.payment_method) {
        if (!state || !state.payment) return Promise.reject(integrationError("stripe.confirmPayment(): pass `elements` with a mounted Payment Element."));
        var read = state.readCard();
        if (read.error) return Promise.resolve({ error: read.error });
        params.payment_method_data = Object.assign({}, params.payment_method_data || {}, { type: "card", card: read.card });
      }
      return call("POST", "/v1/payment_intents/" + intentId(clientSecret) + "/confirm", params).then(function (r) {
        if (r.error) return { error: r.error };
        var done = r.object.status === "requires_action" ? act(clientSecret, r.object) : Promise.resolve({ paymentIntent: r.object });
        return done.then(function (result) {
          if (result.error || redirect === "if_required") return result;
          window.location.assign(redirectQuery(confirmParams.return_url, result.paymentIntent));
          return new Promise(function () {});
        });
      });
    }

    function handleNextAction(options) {
      var clientSecret = options && options.clientSecret;
      return retrievePaymentIntent(clientSecret).then(function (r) {
        if (r.error) return r;
        if (r.paymentIntent.status !== "requires_action") {
          throw integrationError("stripe.handleNextAction(): the PaymentIntent has status " + r.paymentIntent.status + ", not requires_action.");
        }
        return act(clientSecret, r.paymentIntent);
      });
    }

    function createPaymentMethod(options) {
      var state = options && options.elements && options.elements._state;
      if (!state || !state.payment) return Promise.reject(integrationError("stripe.createPaymentMethod(): pass `elements` with a mounted Payment Element."));
      var read = state.readCard();
      if (read.error) return Promise.resolve({ error: read.error });
      var params = Object.assign({}, (options.params || {}), { type: "card", card: read.card });
      return call("POST", "/v1/payment_methods", params).then(function (r) {
        return r.error ? { error: r.error } : { paymentMethod: r.object };
      });
    }

    return {
      elements: function (elementsOptions) { return createElements(elementsOptions || {}); },
      confirmPayment: confirmPayment,
      retrievePaymentIntent: retrievePaymentIntent,
      handleNextAction: handleNextAction,
      createPaymentMethod: createPaymentMethod,
    };
  }

  global.Stripe = Stripe;
})(window);
