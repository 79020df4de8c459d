"""Stripe's test PaymentMethods (https://docs.stripe.com/testing) and the errors their payments end in."""

from dataclasses import dataclass

from local_runtime.fake_stripe.errors import ApiError
from local_runtime.fake_stripe.objects import Obj


@dataclass(frozen=True)
class TestPaymentMethod:
    """Behaviour of one of Stripe's documented test PaymentMethod ids."""

    type: str  # card | sepa_debit | us_bank_account
    outcome: str  # succeed | decline | authenticate | async
    decline_code: str | None = None  # decline: card decline code; async: failure code
    settles_ok: bool | None = None  # async: final outcome; None = stays processing
    settle_factor: float = 1.0  # async: multiple of async_settle_seconds
    brand: str = "visa"
    last4: str = "4242"


ASYNC_FAILURE = "payment_intent_payment_attempt_failed"
TEST_PAYMENT_METHODS: dict[str, TestPaymentMethod] = {
    "pm_card_visa": TestPaymentMethod("card", "succeed"),
    "pm_card_mastercard": TestPaymentMethod("card", "succeed", brand="mastercard", last4="4444"),
    "pm_card_chargeDeclined": TestPaymentMethod("card", "decline", "generic_decline", last4="0002"),
    "pm_card_visa_chargeDeclined": TestPaymentMethod("card", "decline", "generic_decline", last4="0002"),
    "pm_card_chargeDeclinedInsufficientFunds": TestPaymentMethod("card", "decline", "insufficient_funds", last4="9995"),
    "pm_card_authenticationRequired": TestPaymentMethod("card", "authenticate", last4="3184"),
    "pm_card_threeDSecure2Required": TestPaymentMethod("card", "authenticate", last4="3220"),
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


def find_test_payment_method(pm_id: str) -> TestPaymentMethod:
    if pm_id not in TEST_PAYMENT_METHODS:
        raise ApiError(400, f"No such PaymentMethod: '{pm_id}'", code="resource_missing", param="payment_method")
    return TEST_PAYMENT_METHODS[pm_id]


def payment_method_object(pm_id: str) -> Obj:
    pm = TEST_PAYMENT_METHODS[pm_id]
    return {"id": pm_id, "object": "payment_method", "type": pm.type, pm.type: {"last4": pm.last4}}
