"""What Stripe's test mode does with its test cards and test PaymentMethods (https://docs.stripe.com/testing).

Card numbers are for the customer's side (Stripe.js, `POST /v1/payment_methods`); the `pm_...` ids are the
server-side shortcuts Stripe documents "instead of card numbers"
(https://docs.stripe.com/testing?testing-method=payment-methods). The 3-D Secure cards follow
https://docs.stripe.com/testing#regulatory-cards: 4000002500003155 asks on-session, and off-session too unless
it was set up for future payments (here: saved by a PaymentIntent with `setup_future_usage`; a bare
`/attach` does not set a card up), 4000002760003184 always,
4000003800000446 only on-session, 4000008260003178 asks and then declines for insufficient funds, and
4000000000003220 always runs 3-D Secure 2.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class TestPaymentMethod:
    """What happens when a payment is attempted with one of Stripe's test instruments."""

    type: str  # card | sepa_debit | us_bank_account
    outcome: str  # succeed | decline | async (after authentication, when one is asked for)
    decline_code: str | None = None  # decline: card decline code; async: failure code
    settles_ok: bool | None = None  # async: final outcome; None = stays processing
    settle_factor: float = 1.0  # async: multiple of async_settle_seconds
    brand: str = "visa"
    last4: str = "4242"
    authentication: str = "never"  # never | on_session | unless_set_up | always

    def needs_authentication(self, off_session: bool, set_up: bool) -> bool:
        if self.authentication == "always" or (self.authentication != "never" and not off_session):
            return True
        return self.authentication == "unless_set_up" and not set_up


ASYNC_FAILURE = "payment_intent_payment_attempt_failed"


def _card(outcome: str, last4: str, decline_code: str | None = None, *, brand: str = "visa", auth: str = "never"):
    return TestPaymentMethod("card", outcome, decline_code, brand=brand, last4=last4, authentication=auth)


TEST_CARDS: dict[str, TestPaymentMethod] = {
    "4242424242424242": _card("succeed", "4242"),
    "5555555555554444": _card("succeed", "4444", brand="mastercard"),
    "4000000000000002": _card("decline", "0002", "generic_decline"),
    "4000000000009995": _card("decline", "9995", "insufficient_funds"),
    "4000002500003155": _card("succeed", "3155", auth="unless_set_up"),
    "4000002760003184": _card("succeed", "3184", auth="always"),
    "4000003800000446": _card("succeed", "0446", auth="on_session"),
    "4000008260003178": _card("decline", "3178", "insufficient_funds", auth="always"),
    "4000000000003220": _card("succeed", "3220", auth="always"),
}

TEST_PAYMENT_METHODS: dict[str, TestPaymentMethod] = {
    "pm_card_visa": TEST_CARDS["4242424242424242"],
    "pm_card_mastercard": TEST_CARDS["5555555555554444"],
    "pm_card_chargeDeclined": TEST_CARDS["4000000000000002"],
    "pm_card_visa_chargeDeclined": TEST_CARDS["4000000000000002"],
    "pm_card_chargeDeclinedInsufficientFunds": TEST_CARDS["4000000000009995"],
    "pm_card_authenticationRequiredOnSetup": TEST_CARDS["4000002500003155"],
    "pm_card_authenticationRequired": TEST_CARDS["4000002760003184"],
    "pm_card_threeDSecure2Required": TEST_CARDS["4000000000003220"],
    # SEPA Direct Debit (DE test IBANs): processing -> succeeded / requires_payment_method
    "pm_success_de": TestPaymentMethod("sepa_debit", "async", settles_ok=True, last4="3000"),
    "pm_successDelayed_de": TestPaymentMethod("sepa_debit", "async", settles_ok=True, settle_factor=3, last4="3003"),
    "pm_failed_de": TestPaymentMethod("sepa_debit", "async", ASYNC_FAILURE, False, last4="3001"),
    "pm_failedDelayed_de": TestPaymentMethod(
        "sepa_debit", "async", ASYNC_FAILURE, False, settle_factor=3, last4="3004"
    ),
    "pm_insufficientFunds_de": TestPaymentMethod("sepa_debit", "async", "insufficient_funds", False, last4="2227"),
    # ACH Direct Debit
    "pm_usBankAccount_success": TestPaymentMethod("us_bank_account", "async", settles_ok=True, last4="6789"),
    "pm_usBankAccount_accountClosed": TestPaymentMethod(
        "us_bank_account", "async", "account_closed", False, last4="1113"
    ),
    "pm_usBankAccount_noAccount": TestPaymentMethod("us_bank_account", "async", "no_account", False, last4="1116"),
    "pm_usBankAccount_insufficientFunds": TestPaymentMethod(
        "us_bank_account", "async", "insufficient_funds", False, last4="2227"
    ),
    "pm_usBankAccount_debitNotAuthorized": TestPaymentMethod(
        "us_bank_account", "async", "debit_not_authorized", False, last4="3335"
    ),
    "pm_usBankAccount_processing": TestPaymentMethod("us_bank_account", "async", last4="0009"),
}

ERROR_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "debit_not_authorized": "The customer has notified their bank that this payment was unauthorized.",
    ASYNC_FAILURE: "The latest payment attempt of this PaymentIntent has failed.",
    "payment_intent_authentication_failure": "The provided PaymentMethod has failed authentication. You can provide "
    "payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
}
